"""Waiting for a container to be ready: a testcontainers wait strategy that runs a harness
probe against the port published for it, and the container log it quotes on failure."""

from __future__ import annotations

import threading
import time
from typing import Any

from testcontainers.core.waiting_utils import WaitStrategy, WaitStrategyTarget

from harness import probes
from harness.backends.containers.layout import HOST
from harness.errors import ComponentError, HarnessError, ReadinessTimeout
from harness.topology import Probe

__all__ = ["ProbeWait", "log_tail"]


class ProbeWait(WaitStrategy):
    """A testcontainers wait strategy running a harness probe against a published port.

    It fails at once when the container exits, and on timeout says what it waited for,
    the container's state and its recent log.
    """

    def __init__(
        self,
        name: str,
        probe: Probe,
        port: int,
        timeout: float,
        closing: threading.Event,
        password: str | None = None,
    ) -> None:
        super().__init__()
        self.name, self.probe, self.port, self.closing = name, probe, port, closing
        self.password = password
        self.with_startup_timeout(int(timeout) if timeout == int(timeout) else 1)
        self.timeout = timeout

    def wait_until_ready(self, container: WaitStrategyTarget) -> None:
        wrapped = container.get_wrapped_container()
        started = time.monotonic()
        pause, checks = 0.005, 0
        while True:
            if probes.check(self.probe, HOST, self.port, self.password):
                return
            if self.closing.is_set():
                raise HarnessError(f"{self.name}: start abandoned, the system is shutting down")
            checks += 1
            if checks % 10 == 0:
                wrapped.reload()
                if wrapped.status in ("exited", "dead"):
                    code = wrapped.attrs["State"].get("ExitCode")
                    raise ComponentError(
                        self.name,
                        f"container {wrapped.name} exited with code {code} before it was ready",
                        log_tail(wrapped),
                    )
            waited = time.monotonic() - started
            if waited > self.timeout:
                wrapped.reload()
                raise ReadinessTimeout(
                    self.name,
                    f"not ready after {self.timeout:.1f} s waiting for"
                    f" {probes.describe(self.probe, HOST, self.port)}"
                    f" (container {wrapped.name}, status {wrapped.status})",
                    log_tail(wrapped),
                )
            time.sleep(pause)
            pause = min(pause * 1.5, 0.02)


def log_tail(container: Any, lines: int = 30) -> str:
    try:
        return container.logs(tail=lines).decode(errors="replace").rstrip()
    except Exception as exc:
        return f"(no log: {exc})"
