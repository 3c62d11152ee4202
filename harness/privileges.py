"""Dropping privileges: whether another user can run a program, judged by its mode bits.

A component that names a `user:` runs as that user when the harness runs as root, so a
local user who takes it over does not get root. That only works when the user can reach
the program: a virtualenv's Python that links into /root (mode 0700) cannot be run by
`nobody`. `unreachable` says why a user could not execute a program, or None when it can.

    reason = unreachable(shutil.which("redis-server"), uid, gid)
"""

from __future__ import annotations

import os
import shutil
import stat

__all__ = ["unreachable"]

_X = 1  # the execute (search, for a directory) bit, in each of the three triplets


def _allows(st: os.stat_result, uid: int, gid: int) -> bool:
    if st.st_uid == uid:
        return bool(st.st_mode & (_X << 6))
    if st.st_gid == gid:
        return bool(st.st_mode & (_X << 3))
    return bool(st.st_mode & _X)


def _closed_on_the_way(path: str, uid: int, gid: int) -> str | None:
    """The first directory of `path` (or the file) that `uid` cannot search (execute)."""
    parts = os.path.abspath(path).split(os.sep)
    for i in range(1, len(parts) + 1):
        at = os.sep.join(parts[:i]) or os.sep
        try:
            st = os.stat(at)
        except OSError as exc:
            return f"{at}: {exc.strerror}"
        is_dir = stat.S_ISDIR(st.st_mode)
        if (is_dir or i == len(parts)) and not _allows(st, uid, gid):
            return at
    return None


def unreachable(program: str, uid: int, gid: int) -> str | None:
    """Why the user `uid` (group `gid`) cannot execute `program` (a path, or a name looked
    up on PATH), or None when it can."""
    path = program if os.sep in program else shutil.which(program)
    if path is None:
        return f"{program} is not on PATH"
    for candidate in dict.fromkeys((path, os.path.realpath(path))):
        closed = _closed_on_the_way(candidate, uid, gid)
        if closed is not None:
            return f"{closed} is closed to it (on the way to {candidate})"
    return None
