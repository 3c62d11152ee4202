"""Where runs are kept: ``<runs>/<experiment>/<timestamp>-<profile>/`` with the
experiment as run, the history (gzipped JSON lines), the component logs and ``journal.json``
(`harness.journal`), and a ``latest`` link per experiment. Run directories are private
to the user who ran them (0700): they hold logs and data of the system under test.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

from harness import journal
from harness.journal import RunJournal, SearchJournal

__all__ = ["HISTORY", "RunDir"]

HISTORY = "history.jsonl.gz"


class RunDir:
    """One run's directory under the runs root."""

    def __init__(self, root: Path | str, experiment: str, profile: str) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{int(time.time() * 1000) % 1000:03d}"
        self.experiment_dir = Path(root) / experiment
        self.experiment_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.experiment_dir / f"{stamp}-{profile}"
        self.path.mkdir(mode=0o700, exist_ok=False)
        self.path.chmod(0o700)

    @property
    def history(self) -> Path:
        return self.path / HISTORY

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def journal(self) -> Path:
        return self.path / journal.FILE

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

    def write_journal(self, record: RunJournal | SearchJournal) -> Path:
        path = journal.write(self.path, record)
        self._link_latest()
        return path

    def _link_latest(self) -> None:
        link = self.experiment_dir / "latest"
        tmp = self.experiment_dir / f".latest-{os.getpid()}"
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(self.path.name)
        tmp.replace(link)
