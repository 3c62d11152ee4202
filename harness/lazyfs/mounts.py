"""The LazyFS mounts of a running system: a backend's hook that puts the directories a
topology declares (`lazyfs: [spool]`) on LazyFS before their component starts, and
removes every mount at teardown.

For each declared directory `DIR` of a component's run directory, whatever the backend
prepared there (a data directory copied from its template, or nothing) moves to
`.lazyfs/DIR` (BACKING), and a LazyFS process mounts it back at `DIR`, with the same
owner and mode, so the component sees the same files. The mounts outlive restarts of
the component (the power loss kills the component, not the disk); `close()` stops them,
flushing nothing that matters any more, and reaps stale mounts. A harness killed
outright leaves its LazyFS processes to the session reaper, which unmounts what they
leave (`harness.sessions`).

    mounts = Mounts(session)
    mounts.mount("app-1", run_dir / "app-1", ("spool",), owner)   # before app-1 starts
    mounts.clients("app-1")       # {"spool": LazyFSClient}: lose_unsynced(), stats()
    mounts.close()                # at teardown, once the components are dead
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from harness.errors import ComponentError
from harness.lazyfs.control import LazyFSClient
from harness.lazyfs.mount import unmount_under
from harness.lazyfs.process import LazyFSProcess

__all__ = ["BACKING", "Mounts", "available"]

BACKING = ".lazyfs"
"""Where, in the component's run directory, the directories on LazyFS really live."""


class _Recorder(Protocol):
    def record_group(self, pgid: int) -> None: ...


def available() -> str | None:
    """Why LazyFS cannot mount here (None: it can): it needs /dev/fuse, fusermount3,
    libfuse 3 and the mfusepy binding, and root for `allow_other`."""
    import ctypes.util
    import importlib.util
    import shutil

    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if shutil.which("fusermount3") is None:
        return "no fusermount3 (apt: fuse3)"
    if ctypes.util.find_library("fuse3") is None:
        return "no libfuse 3 (apt: libfuse3-3)"
    if importlib.util.find_spec("mfusepy") is None:
        return "no mfusepy (pip)"
    if os.geteuid() != 0:
        return "not root (the mount serves other users: allow_other)"
    return None


_MAX_SOCKET_PATH = 100  # a unix socket's path must fit in 108 bytes


def _name(directory: str) -> str:
    return "lazyfs-" + directory.replace("/", "_")


def _control_path(home: Path, directory: str) -> Path:
    """The control socket: beside the backing directory, or, when that path is too long
    for a unix socket, a short one in the temporary directory."""
    path = home / f"{_name(directory)}.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    return Path(tempfile.gettempdir()) / f"lazyfs-{secrets.token_hex(6)}.sock"


class Mounts:
    """Every LazyFS mount of one running system, by component and directory."""

    def __init__(self, session: _Recorder | None = None) -> None:
        self.session = session
        self._mounts: dict[str, dict[str, LazyFSProcess]] = {}
        self._lock = threading.Lock()

    def mount(
        self,
        component: str,
        run_dir: Path,
        directories: tuple[str, ...],
        owner: tuple[int, int] | None,
    ) -> None:
        """Put `directories` of `run_dir` on LazyFS (call before the component starts)."""
        if not directories:
            return
        why = available()
        if why is not None:
            raise ComponentError(component, f"cannot put {list(directories)} on LazyFS: {why}")
        for directory in directories:
            target = run_dir / directory
            backing = run_dir / BACKING / directory
            backing.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                target.rename(backing)  # what the backend prepared (a data directory)
            else:
                backing.mkdir(mode=0o755)
                if owner:
                    os.chown(backing, *owner)
            st = backing.stat()
            target.mkdir(mode=0o755, parents=True)
            os.chown(target, st.st_uid, st.st_gid)
            target.chmod(st.st_mode & 0o7777)
            fs = LazyFSProcess(
                backing,
                target,
                _control_path(run_dir / BACKING, directory),
                log=run_dir / BACKING / f"{_name(directory)}.log",
            )
            with self._lock:
                self._mounts.setdefault(component, {})[directory] = fs
            fs.start()
            if self.session is not None and fs.popen is not None:
                self.session.record_group(fs.popen.pid)

    def clients(self, component: str) -> Mapping[str, LazyFSClient]:
        """The control clients of a component's mounts, by directory (empty: none)."""
        with self._lock:
            return {d: fs.client for d, fs in self._mounts.get(component, {}).items()}

    def logs(self, component: str, lines: int = 20) -> str:
        """The tail of each of a component's LazyFS logs (for an error message)."""
        with self._lock:
            found = list(self._mounts.get(component, {}).items())
        return "\n".join(f"[lazyfs {d}]\n{fs.tail(lines)}" for d, fs in found)

    def close(self) -> None:
        """Stop every mount (the components must be dead) and reap stale ones; safe twice."""
        with self._lock:
            mounts = [fs for by_dir in self._mounts.values() for fs in by_dir.values()]
            self._mounts.clear()
        for fs in mounts:
            with contextlib.suppress(Exception):
                fs.kill()  # the run's files are deleted next: nothing to flush
            with contextlib.suppress(Exception):
                unmount_under(fs.mountpoint)
            with contextlib.suppress(OSError):
                fs.control.unlink()
