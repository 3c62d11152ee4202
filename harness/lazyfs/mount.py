"""Finding and removing LazyFS mounts, live or stale.

A LazyFS process stopped by SIGTERM, SIGINT or ``fusermount3 -u`` unmounts itself. One
killed by SIGKILL leaves its mount behind, answering ``ENOTCONN`` ("Transport endpoint
is not connected") to everything: the harness reaps it with :func:`unmount` on the
mountpoint, or :func:`unmount_under` on a directory about to be deleted (before
``rmtree``, which cannot descend a stale mount). Both try ``fusermount3 -u``, then
the lazy ``-z`` when a process still has a file or its cwd there, then ``umount -l``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from pathlib import Path

FSTYPE = "fuse.lazyfs"


def _unescape(field: str) -> str:
    return (
        field.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
    )


def lazyfs_mounts() -> list[Path]:
    """Every LazyFS mountpoint in this mount namespace (deepest first)."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        for line in info:
            left, _, right = line.partition(" - ")
            if right.split(" ", 1)[0] == FSTYPE:
                found.append(Path(_unescape(left.split(" ")[4])))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def is_mounted(mountpoint: str | Path) -> bool:
    return Path(os.path.realpath(mountpoint)) in lazyfs_mounts()


def is_stale(mountpoint: str | Path) -> bool:
    """Mounted, but nobody serves it (the process was killed)."""
    if not is_mounted(mountpoint):
        return False
    try:
        os.stat(mountpoint)
    except OSError as exc:
        return exc.errno == errno.ENOTCONN
    return False


def unmount(mountpoint: str | Path) -> bool:
    """Unmount a LazyFS mount, live or stale; whether one was there."""
    target = os.path.realpath(mountpoint)
    if not is_mounted(target):
        return False
    fusermount = shutil.which("fusermount3") or shutil.which("fusermount")
    attempts = [[fusermount, "-u", target], [fusermount, "-u", "-z", target]] if fusermount else []
    attempts.append(["umount", "-l", target])
    for command in attempts:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(command, capture_output=True, timeout=10, check=False)
        if not is_mounted(target):
            return True
    return not is_mounted(target)


def unmount_under(directory: str | Path) -> list[Path]:
    """Unmount every LazyFS mount at or below ``directory``; the mountpoints removed."""
    root = Path(os.path.realpath(directory))
    removed = []
    for mountpoint in lazyfs_mounts():
        if (mountpoint == root or root in mountpoint.parents) and unmount(mountpoint):
            removed.append(mountpoint)
    return removed
