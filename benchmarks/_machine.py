"""What every benchmark records about the machine it ran on."""

from __future__ import annotations

import os
import platform


def machine() -> dict[str, object]:
    """The processor and the number of CPUs this process may use."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"machine": platform.processor() or platform.machine(), "cpus": cpus}
