"""The control interface: one JSON line per request and per answer on a unix socket.

=============================  ==================================================
request                        answer (``"ok": true`` added; errors are
                               ``{"ok": false, "error": "..."}``)
=============================  ==================================================
``{"op": "stats"}``            ``dirty_bytes``, ``dirty_files``, ``fsyncs``
``{"op": "lose_unsynced"}``    ``discarded_bytes``, ``discarded_files``
``{"op": "sync_all"}``         ``synced_bytes``, ``synced_files``
=============================  ==================================================

:class:`ControlServer` answers in the filesystem's process (its threads block the
signals that stop the mount, so they reach libfuse's loop); :class:`LazyFSClient` is
what the harness calls, one connection per request::

    lazyfs = LazyFSClient("/run/x/lazyfs.sock")
    lazyfs.wait_ready(10)
    lost = lazyfs.lose_unsynced()   # Discarded(bytes=..., files=...)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import socketserver
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from harness.errors import HarnessError
from harness.lazyfs.overlay import Overlays

_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
_MAX_LINE = 4096


class ControlError(HarnessError):
    """The filesystem's control socket did not answer, or answered with an error."""


@dataclass(frozen=True)
class Stats:
    """What the mount holds in memory now, and the fsyncs it has served."""

    dirty_bytes: int
    dirty_files: int
    fsyncs: int


@dataclass(frozen=True)
class Discarded:
    """Evidence of a power loss: the unsynced bytes and files it threw away."""

    bytes: int
    files: int


@dataclass(frozen=True)
class Synced:
    """What ``sync_all`` wrote to BACKING and synced."""

    bytes: int
    files: int


def answer(overlays: Overlays, request: Any) -> dict[str, Any]:
    """The answer to one decoded request."""
    op = request.get("op") if isinstance(request, dict) else None
    if op == "stats":
        tally = overlays.stats()
        return {
            "ok": True,
            "dirty_bytes": tally.bytes,
            "dirty_files": tally.files,
            "fsyncs": overlays.fsyncs,
        }
    if op == "lose_unsynced":
        tally = overlays.lose_unsynced()
        return {"ok": True, "discarded_bytes": tally.bytes, "discarded_files": tally.files}
    if op == "sync_all":
        tally = overlays.sync_all()
        return {"ok": True, "synced_bytes": tally.bytes, "synced_files": tally.files}
    return {"ok": False, "error": f"unknown op {op!r}; ops: stats, lose_unsynced, sync_all"}


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server = cast(ControlServer, self.server)  # the only server this handler serves
        for line in iter(lambda: self.rfile.readline(_MAX_LINE), b""):
            try:
                reply = answer(server.overlays, json.loads(line))
            except json.JSONDecodeError as exc:
                reply = {"ok": False, "error": f"not JSON: {exc}"}
            except OSError as exc:
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            self.wfile.write(json.dumps(reply).encode() + b"\n")


class ControlServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Serves the control protocol for ``overlays`` on ``path`` (mode 0600); the path is
    bound at once, connections are accepted from :meth:`start` on (once mounted)."""

    daemon_threads = True

    def __init__(self, path: str | Path, overlays: Overlays) -> None:
        self.path, self.overlays = str(path), overlays
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        super().__init__(self.path, _Handler, bind_and_activate=False)
        old = os.umask(0o177)
        try:
            self.server_bind()
        finally:
            os.umask(old)
        self._thread = threading.Thread(target=self._serve, name="lazyfs-control", daemon=True)

    def _serve(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        self.serve_forever(poll_interval=0.2)

    def start(self) -> None:
        self.server_activate()
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.shutdown()
        self.server_close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class LazyFSClient:
    """The harness's handle on one mount's control socket."""

    def __init__(self, socket_path: str | Path, timeout: float = 60.0) -> None:
        self.socket_path = str(socket_path)
        self.timeout = timeout

    def request(self, op: str) -> dict[str, Any]:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self.socket_path)
                sock.sendall(json.dumps({"op": op}).encode() + b"\n")
                with sock.makefile("rb") as stream:
                    line = stream.readline()
        except OSError as exc:
            raise ControlError(f"lazyfs control {self.socket_path}: {op}: {exc}") from None
        if not line:
            raise ControlError(f"lazyfs control {self.socket_path}: {op}: no answer")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise ControlError(f"lazyfs control {self.socket_path}: {op}: {reply.get('error')}")
        return reply

    def stats(self) -> Stats:
        r = self.request("stats")
        return Stats(r["dirty_bytes"], r["dirty_files"], r["fsyncs"])

    def lose_unsynced(self) -> Discarded:
        r = self.request("lose_unsynced")
        return Discarded(r["discarded_bytes"], r["discarded_files"])

    def sync_all(self) -> Synced:
        r = self.request("sync_all")
        return Synced(r["synced_bytes"], r["synced_files"])

    def wait_ready(self, timeout: float = 10.0) -> Stats:
        """Stats once the socket answers: the mount is up (the socket opens only then)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.stats()
            except ControlError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
