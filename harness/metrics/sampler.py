"""The sampler: a process of its own that reads every declared source once per interval
and appends the samples to the run's ``metrics.jsonl`` (`harness.metrics.store`).

A process, not a thread of the generator's: parsing pages and querying PostgreSQL would
otherwise hold the generator's interpreter lock and delay its sends. It starts before
the workload and waits on its standard input for the runner's t0 (a monotonic time,
the same clock in every process), so sampling starts without delaying the first send;
it stops on SIGTERM, and on its own when its parent dies (stdin closes).

    with Sampler(targets, every=1.0, out=run_dir / "metrics.jsonl") as sampler:
        runner = Runner(..., on_start=sampler.start)   # sampler.start(t0)
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import urlsplit

from harness.backends import Endpoints
from harness.metrics.readers import TIMEOUT, Reader, reader
from harness.metrics.spec import MetricsSpec
from harness.metrics.store import FORMAT

__all__ = ["Sampler", "Target", "targets"]

_PR_SET_PDEATHSIG = 1
READY_TIMEOUT = 10.0  # seconds the sampler may take to import and warm its readers
NICE = 10  # the sampler is an observer: it yields the CPU to the system and the load


@dataclass(frozen=True)
class Target:
    """One source to read: a component (or ``toxiproxy``), its reader kind and address."""

    component: str
    kind: str
    host: str
    port: int
    path: str = ""
    url: str = ""


def targets(spec: MetricsSpec, endpoints: Endpoints) -> list[Target]:
    """What to read on a running system: each component whose group (or own name) the
    spec lists, at its direct address, and Toxiproxy when asked."""
    out = []
    for name, ep in endpoints.components.items():
        source = spec.components.get(name) or spec.components.get(ep.group)
        if source is not None:
            out.append(Target(name, source.kind, ep.host, ep.port, source.path, ep.dsn))
    if spec.toxiproxy:
        api = urlsplit(endpoints.toxiproxy)
        out.append(Target("toxiproxy", "toxiproxy", api.hostname or "127.0.0.1", api.port or 0))
    return out


class Sampler:
    """The sampler process for the duration of a ``with`` block."""

    def __init__(self, targets: list[Target], every: float, out: Path) -> None:
        self.targets, self.every, self.out = targets, every, out
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Sampler:
        config = {
            "every": self.every,
            "out": str(self.out),
            "targets": [asdict(t) for t in self.targets],
        }
        self._proc = proc = subprocess.Popen(
            [sys.executable, "-m", "harness.metrics.sampler"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "HARNESS_COMPONENT": "metrics-sampler"},
            start_new_session=True,  # a scheduling group of its own, niced (see `main`)
        )
        # the config on stdin, not argv: it holds the components' passwords
        assert proc.stdin is not None and proc.stdout is not None
        with contextlib.suppress(OSError):
            proc.stdin.write(json.dumps(config).encode() + b"\n")
            proc.stdin.flush()
        # its imports and first connections before the clock starts, not during the load
        ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT)
        if ready:
            proc.stdout.readline()
        return self

    def start(self, t0: float) -> None:
        """Begin sampling on the runner's clock (called with the runner's t0)."""
        proc = self._proc
        if proc is None or proc.stdin is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.write(f"{t0!r}\n".encode())
            proc.stdin.flush()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:  # end of input: the sampler finishes its sample and exits
            with contextlib.suppress(OSError):
                proc.stdin.close()
        for action in (None, proc.terminate, proc.kill):
            if action is not None:
                with contextlib.suppress(OSError):
                    action()
            try:
                proc.wait(timeout=2 * TIMEOUT + 0.5)
                return
            except subprocess.TimeoutExpired:
                continue


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _sample(
    pool: concurrent.futures.Executor, readers: dict[str, Reader], t0: float, out: IO[str]
) -> None:
    """Read every source at once; one line per source."""
    t = time.monotonic() - t0

    def one(comp: str, read: Reader) -> dict[str, Any]:
        started = time.monotonic()
        row: dict[str, Any] = {"t": round(t, 4), "c": comp}
        try:
            row["v"] = read()
        except Exception as exc:  # a failed read is a sample of its own
            row["error"] = f"{type(exc).__name__}: {exc}"[:200]
        row["ms"] = round((time.monotonic() - started) * 1000, 2)
        return row

    futures = [pool.submit(one, c, r) for c, r in readers.items()]
    for f in futures:
        out.write(json.dumps(f.result(), separators=(",", ":")) + "\n")
    out.flush()


def main() -> None:
    """The process: read its config (one JSON line) and then t0 on stdin, then sample
    every interval until stopped."""
    _die_with_parent()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(OSError), open("/proc/self/autogroup", "w") as f:
        f.write(str(NICE))
    with contextlib.suppress(OSError):
        os.nice(NICE)
    config = json.loads(sys.stdin.readline())
    every = float(config["every"])
    targets = [Target(**t) for t in config["targets"]]
    readers = {t.component: reader(t.kind, t.host, t.port, t.path, t.url) for t in targets}
    for read in readers.values():  # warm up: connections opened, first pages parsed
        with contextlib.suppress(Exception):
            read()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    with open(config["out"], "w") as out:
        head = {
            "format": FORMAT,
            "every_s": every,
            "sources": {t.component: t.kind for t in targets},
        }
        out.write(json.dumps(head) + "\n")
        out.flush()
        line = sys.stdin.readline()
        if not line.strip():
            return  # the parent went away before the workload started
        t0 = float(line)

        def watch_parent() -> None:
            sys.stdin.read()  # EOF: the parent closed the pipe or died
            stop.set()

        threading.Thread(target=watch_parent, daemon=True).start()
        ticks = 0
        with concurrent.futures.ThreadPoolExecutor(max(1, len(readers))) as pool:
            k = 0
            while not stop.is_set():
                due = t0 + k * every
                delay = due - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    break
                _sample(pool, readers, t0, out)
                ticks += 1
                k = max(k + 1, int((time.monotonic() - t0) / every) + 1)  # skip missed ticks
        used = os.times()
        out.write(
            json.dumps({"end": True, "ticks": ticks, "cpu_s": used.user + used.system}) + "\n"
        )


if __name__ == "__main__":
    main()
