"""Running LazyFS as its own process, as the harness runs any component.

:func:`command` is the command line; :class:`LazyFSProcess` starts it in its own
session, waits for the control socket (answered only once mounted), and stops it:
``stop()`` with SIGTERM (a clean unmount that flushes), ``kill()`` with SIGKILL (the
unsynced bytes die with it) followed by the stale mount's reaping::

    with LazyFSProcess(backing, mountpoint, socket) as lazyfs:
        ...                                 # use the mount
        lazyfs.client.lose_unsynced()
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from harness.errors import ComponentError
from harness.lazyfs.control import ControlError, LazyFSClient
from harness.lazyfs.mount import is_mounted, unmount

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def command(backing: str | Path, mountpoint: str | Path, control: str | Path) -> list[str]:
    """``python -m harness.lazyfs BACKING MOUNTPOINT --control SOCKET``."""
    return [
        sys.executable,
        "-m",
        "harness.lazyfs",
        str(backing),
        str(mountpoint),
        "--control",
        str(control),
    ]


class LazyFSProcess:
    """One LazyFS mount served by a child process."""

    def __init__(
        self,
        backing: str | Path,
        mountpoint: str | Path,
        control: str | Path,
        log: str | Path | None = None,
    ) -> None:
        self.backing, self.mountpoint = Path(backing), Path(mountpoint)
        self.control = Path(control)
        self.log = Path(log) if log else self.control.with_suffix(".log")
        self.client = LazyFSClient(self.control)
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> LazyFSProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")])
        )
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(
                command(self.backing, self.mountpoint, self.control),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        try:
            self.client.wait_ready(timeout)
        except ControlError:
            self.kill()
            raise ComponentError("lazyfs", "the mount did not come up", self.tail()) from None
        return self

    def tail(self, lines: int = 20) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM: libfuse flushes every unsynced byte and unmounts; the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                return self.kill()
        unmount(self.mountpoint)
        return self.popen.returncode

    def kill(self) -> int | None:
        """SIGKILL (every unsynced byte is lost), then reap the stale mount."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)
        unmount(self.mountpoint)
        return self.popen.returncode

    @property
    def mounted(self) -> bool:
        return is_mounted(self.mountpoint)

    def __enter__(self) -> LazyFSProcess:
        return self.start() if self.popen is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
