"""Shared memory that killed processes leave behind. A segment in /dev/shm lives until
someone unlinks it, and a System V segment until someone removes it; a process killed
with SIGKILL does neither (PostgreSQL's dynamic shared memory, one or more 1 MB+ files per
server, and its small System V interlock segment). The harness reads which segments a
component's processes have mapped before it kills them and removes those afterwards, so
a run leaves the machine's shared memory as it found it."""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SHM", "Segments", "mapped_segments", "unlink"]

SHM = Path("/dev/shm")
_SYSV_TABLE = Path("/proc/sysvipc/shm")
_IPC_RMID = 0


@dataclass(frozen=True, slots=True)
class Segments:
    """Shared memory some processes had mapped: files in /dev/shm and System V ids."""

    files: frozenset[Path] = frozenset()
    sysv: frozenset[int] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.files or self.sysv)

    def remaining(self) -> Segments:
        """Those of them that still exist."""
        ids = _sysv_ids()
        return Segments(frozenset(p for p in self.files if p.exists()), frozenset(self.sysv & ids))


def mapped_segments(pids: Iterable[int], shm: Path = SHM) -> Segments:
    """Segments mapped by any of `pids` (gone or unreadable processes skipped): files
    directly in `shm`, and System V segments (their id is the mapping's inode)."""
    files: set[Path] = set()
    sysv: set[int] = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as fh:
                lines = fh.read().splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split(maxsplit=5)
            if len(fields) != 6:
                continue
            name = fields[5]
            if name.startswith("/SYSV"):
                sysv.add(int(fields[4]))
            # segments are files directly in /dev/shm; a deeper file (a component's data
            # directory under /dev/shm/harness) is data, which a real crash keeps
            elif not name.endswith(" (deleted)") and Path(name).parent == shm:
                files.add(Path(name))
    return Segments(frozenset(files), frozenset(sysv))


def unlink(segments: Segments) -> int:
    """Remove the segments that still exist; how many were removed. A System V segment
    still attached somewhere goes once its last user detaches (IPC_RMID)."""
    removed = 0
    for path in segments.files:
        with contextlib.suppress(OSError):
            os.unlink(path)
            removed += 1
    if segments.sysv:
        libc = ctypes.CDLL(None, use_errno=True)
        for shmid in segments.sysv:
            if libc.shmctl(ctypes.c_int(shmid), _IPC_RMID, None) == 0:
                removed += 1
    return removed


def _sysv_ids() -> frozenset[int]:
    try:
        lines = _SYSV_TABLE.read_text().splitlines()[1:]
    except OSError:
        return frozenset()
    return frozenset(int(line.split()[1]) for line in lines if line.strip())
