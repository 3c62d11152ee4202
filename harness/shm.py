"""POSIX shared memory that killed processes leave behind: a segment in /dev/shm lives
until someone unlinks it, and a process killed with SIGKILL never does (PostgreSQL's
dynamic shared memory, one or more 1 MB+ files per server). The harness reads which
segments a component's processes have mapped before it kills them and unlinks those
afterwards, so a run leaves /dev/shm as it found it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["SHM", "mapped_segments", "unlink"]

SHM = Path("/dev/shm")


def mapped_segments(pids: Iterable[int], shm: Path = SHM) -> set[Path]:
    """Files directly in `shm` mapped by any of `pids` (gone or unreadable processes
    skipped)."""
    found: set[Path] = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as fh:
                lines = fh.read().splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split(maxsplit=5)
            # segments are files directly in /dev/shm; a deeper file (a component's data
            # directory under /dev/shm/harness) is data, which a real crash keeps
            if len(fields) == 6 and not fields[5].endswith(" (deleted)"):
                path = Path(fields[5])
                if path.parent == shm:
                    found.add(path)
    return found


def unlink(paths: Iterable[Path]) -> int:
    """Remove the segments that still exist; how many were removed."""
    removed = 0
    for path in paths:
        with contextlib.suppress(OSError):
            os.unlink(path)
            removed += 1
    return removed
