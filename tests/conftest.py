"""Shared fixtures: the third-party data directory (``NAS_DATA_DIR``, default ../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data folder; missing data fails under CI and skips elsewhere."""
    path = Path(os.environ.get("NAS_DATA_DIR", REPO.parent / "shared" / "data"))
    if not (path / "nats_bench_tss_csv").is_dir():
        message = f"third-party data not found at {path} (set NAS_DATA_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
