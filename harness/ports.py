"""Free loopback ports for one session, below the ephemeral range so outgoing
connections can never take them, reserved so that two runs never collide.

A reservation is a file ``<base>/ports/<port>`` holding the owning session id,
created with ``O_EXCL``; a reservation whose session is dead is taken over. The port
is also test-bound on 127.0.0.1 before it is handed out, which skips ports other
software holds.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
from pathlib import Path

from harness.errors import HarnessError
from harness.sessions import is_alive

LOW = 15000


def ephemeral_floor() -> int:
    """The first port of the kernel's ephemeral range (outgoing connections use it)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


class PortAllocator:
    """Hands out ports reserved for one session and releases them at the end."""

    def __init__(self, base: Path, session_id: str, host: str = "127.0.0.1") -> None:
        self.dir = base / "ports"
        self.dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.sessions = base / "sessions"
        self.session_id = session_id
        self.host = host
        self.held: list[int] = []
        self._rng = random.Random()

    def allocate(self) -> int:
        high = ephemeral_floor() - 1
        for _ in range(500):
            port = self._rng.randint(LOW, high)
            if self._reserve(port):
                if self._bindable(port):
                    self.held.append(port)
                    return port
                self._unreserve(port)
        raise HarnessError(f"no free port found in {LOW}-{high} after 500 tries")

    def release(self) -> None:
        for port in self.held:
            self._unreserve(port)
        self.held.clear()

    def _reserve(self, port: int) -> bool:
        path = self.dir / str(port)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = path.read_text()
            except OSError:
                return False
            if owner == self.session_id or (owner and is_alive(self.sessions / owner)):
                return False  # ours already, or a live session's
            with contextlib.suppress(OSError):
                path.unlink()
            return self._reserve_once(path)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.session_id)
        return True

    def _reserve_once(self, path: Path) -> bool:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            fh.write(self.session_id)
        return True

    def _unreserve(self, port: int) -> None:
        path = self.dir / str(port)
        with contextlib.suppress(OSError):
            if path.read_text() == self.session_id:
                path.unlink()

    def _bindable(self, port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((self.host, port))
            except OSError:
                return False
        return True
