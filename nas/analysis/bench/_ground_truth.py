"""Ground truth for ranking benchmarks: architectures trained from scratch at a fixed budget, cached on disk.

The cache is one JSON file per training setting (space, dataset, data sizes, fidelity, seed) holding results by
architecture id; each result is written as soon as it is trained, so an interrupted run loses nothing and a rerun
(or one over other architectures) trains only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.core.evaluation import EvalResult, Evaluator
from nas.core.space import Architecture


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/nas`` (``~/.cache/nas`` by default)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "nas"


class GroundTruthCache:
    """Trained results of one setting, read from and written to ``directory/<key>.json``."""

    def __init__(self, directory: Path, setting: Mapping[str, Any]) -> None:
        text = json.dumps(setting, sort_keys=True, default=str)
        self.path = Path(directory) / f"ground-truth-{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"
        self.setting = json.loads(text)
        self.results: dict[str, EvalResult] = {}
        if self.path.is_file():
            stored = json.loads(self.path.read_text())
            self.results = {k: EvalResult.from_dict(v) for k, v in stored["results"].items()}

    def evaluate(
        self,
        evaluator: Evaluator,
        archs: Sequence[Architecture],
        progress: Callable[[EvalResult, bool], None] | None = None,
    ) -> list[EvalResult]:
        """The results of ``archs``: cached ones as stored, the others evaluated now (and stored at once).

        ``progress`` is called with each result and whether it came from the cache."""
        out = []
        for arch in archs:
            cached = arch.arch_id in self.results
            if not cached:
                (self.results[arch.arch_id],) = evaluator.evaluate([arch])
                self._save()
            out.append(self.results[arch.arch_id])
            if progress is not None:
                progress(out[-1], cached)
        return out

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        body = {"setting": self.setting, "results": {k: r.to_dict() for k, r in self.results.items()}}
        partial.write_text(json.dumps(body, indent=1))
        os.replace(partial, self.path)
