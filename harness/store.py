"""Where runs are kept: ``<runs>/<experiment>/<timestamp>-<profile>/`` with the
experiment as run, the history (JSON lines), the component logs and ``journal.json``,
and a ``latest`` link per experiment.

The journal's field names are stable and documented in the README ("Reading a
report"); anything that crosses into it goes through :func:`jsonable`.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

JOURNAL = "journal.json"
HISTORY = "history.jsonl"
JOURNAL_VERSION = 1


def jsonable(value: Any) -> Any:
    """Dataclasses, mappings, sequences, paths and enums as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


class RunDir:
    """One run's directory under the runs root."""

    def __init__(self, root: Path | str, experiment: str, profile: str) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{int(time.time() * 1000) % 1000:03d}"
        self.experiment_dir = Path(root) / experiment
        self.path = self.experiment_dir / f"{stamp}-{profile}"
        self.path.mkdir(parents=True, exist_ok=False)

    @property
    def history(self) -> Path:
        return self.path / HISTORY

    @property
    def journal(self) -> Path:
        return self.path / JOURNAL

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def save_experiment(self, source: Path | str) -> Path:
        target = self.path / "experiment.yaml"
        shutil.copyfile(source, target)
        return target

    def save_logs(self, logs: Mapping[str, str]) -> None:
        self.logs.mkdir(exist_ok=True)
        for name, text in logs.items():
            (self.logs / f"{name}.log").write_text(text)

    def write_journal(self, journal: Mapping[str, Any]) -> Path:
        data = {"journal_version": JOURNAL_VERSION, **jsonable(journal)}
        tmp = self.journal.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False))
        tmp.replace(self.journal)
        self._link_latest()
        return self.journal

    def _link_latest(self) -> None:
        link = self.experiment_dir / "latest"
        tmp = self.experiment_dir / f".latest-{os.getpid()}"
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(self.path.name)
        tmp.replace(link)


def read_journal(run_dir: Path | str) -> dict[str, Any]:
    """The journal of a run directory (or of ``<experiment>/latest``)."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / JOURNAL
    return json.loads(path.read_text())
