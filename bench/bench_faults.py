"""Benchmark of the fault layer on real Toxiproxy, Redis and processes (mini topology).

Prints (a) actuation time, from a schedule's instant to the fault observed by an
independent watcher on the link or process (link down: first refused connect;
latency: first delayed ping; kill: first refused connect to the component's port),
median and p99 (targets <= 10 ms / <= 50 ms); (b) injected-latency accuracy at 50, 200
and 1000 ms: the median added round trip against the asked latency (target: within 5%
or 2 ms); (c) Toxiproxy's own overhead per hop with no toxic: added p50 round trip and
throughput (requests/s and MB/s) through the link versus a direct connection, same run.
Loopback only; everything started is stopped on exit.

    .venv/bin/python bench/bench_faults.py [--quick]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.backends.local import LocalBackend, LocalSystem
from harness.faults import Kill, Latency, LinkDown, ScheduledFault, run_schedule
from harness.faults.wire import split
from harness.topology import load_topology

MINI = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "mini.yaml"
LINK = "web-1->cache"
PING = b"*1\r\n$4\r\nPING\r\n"


class Redis:
    """One persistent RESP connection, for timed PINGs and bulk GETs."""

    def __init__(self, addr: str) -> None:
        self.sock = socket.create_connection(split(addr), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def ping(self) -> float:
        started = time.perf_counter()
        self.sock.sendall(PING)
        buf = b""
        while not buf.endswith(b"\r\n"):
            chunk = self.sock.recv(64)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return time.perf_counter() - started

    def command(self, *parts: bytes) -> bytes:
        self.sock.sendall(
            b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        )
        head = b""
        while not head.endswith(b"\r\n"):
            head += self.sock.recv(1)
        if head.startswith(b"$"):
            n = int(head[1:-2])
            want, body = n + 2, bytearray()
            while len(body) < want:
                body += self.sock.recv(min(1 << 20, want - len(body)))
            return bytes(body[:-2])
        return head

    def close(self) -> None:
        self.sock.close()


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


# --- (c) overhead per hop --------------------------------------------------------------------
def overhead(system: LocalSystem, pings: int, seconds: float) -> None:
    direct = system.endpoints.components["cache"]
    via = system.endpoints.links[LINK].listen
    results = {}
    for label, addr in (("direct", f"{direct.host}:{direct.port}"), ("toxiproxy", via)):
        r = Redis(addr)
        r.command(b"SET", b"blob", b"x" * (4 << 20))
        for _ in range(200):
            r.ping()
        rtts = [r.ping() for _ in range(pings)]
        started, n = time.perf_counter(), 0
        while time.perf_counter() - started < seconds:
            r.ping()
            n += 1
        rps = n / (time.perf_counter() - started)
        started, moved = time.perf_counter(), 0
        while time.perf_counter() - started < seconds:
            moved += len(r.command(b"GET", b"blob"))
        mbs = moved / (time.perf_counter() - started) / 1e6
        r.close()
        results[label] = (statistics.median(rtts), pct(rtts, 99), rps, mbs)
    (d50, d99, drps, dmbs), (t50, t99, trps, tmbs) = results["direct"], results["toxiproxy"]
    print("Toxiproxy overhead per hop, no toxic (Redis PING / GET 4 MB, one connection):")
    print(
        f"  direct     p50 {d50 * 1e6:7.1f} us  p99 {d99 * 1e6:7.1f} us"
        f"  {drps:8.0f} req/s  {dmbs:7.1f} MB/s"
    )
    print(
        f"  toxiproxy  p50 {t50 * 1e6:7.1f} us  p99 {t99 * 1e6:7.1f} us"
        f"  {trps:8.0f} req/s  {tmbs:7.1f} MB/s"
    )
    print(
        f"  added p50 {(t50 - d50) * 1e6:+.1f} us per hop;"
        f" throughput {trps / drps:.2f}x requests, {tmbs / dmbs:.2f}x bytes"
    )


# --- (b) latency accuracy ----------------------------------------------------------------------
def accuracy(system: LocalSystem, samples: dict[int, int]) -> bool:
    addr = system.endpoints.links[LINK].listen
    r = Redis(addr)
    for _ in range(100):
        r.ping()
    base = statistics.median([r.ping() for _ in range(300)])
    print(f"Injected-latency accuracy on {LINK} (downstream; baseline p50 {base * 1e3:.3f} ms):")
    ok_all = True
    for ms, n in samples.items():
        fault = Latency(link=LINK, latency=ms)
        evidence = fault.inject(system)
        try:
            rtts = [r.ping() for _ in range(n)]
        finally:
            fault.heal(system)
        added = (statistics.median(rtts) - base) * 1e3
        err = added - ms
        tol = max(0.05 * ms, 2.0)
        ok = abs(err) <= tol and evidence.took_effect
        ok_all &= ok
        print(
            f"  asked {ms:5d} ms  added median {added:8.2f} ms  error {err:+6.2f} ms"
            f"  (max {max(rtts) * 1e3 - base * 1e3:.2f})  tolerance {tol:.1f} ms"
            f"  {'ok' if ok else 'MISSED'}  n={n}"
        )
    r.close()
    return ok_all


# --- (a) actuation --------------------------------------------------------------------------
class Watcher(threading.Thread):
    """Polls ``probe()`` in a loop; records (time the probe started, its result)."""

    def __init__(self, probe: Callable[[], object]) -> None:
        super().__init__(daemon=True)
        self.probe, self.samples, self.stop = probe, [], threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            t = time.monotonic()
            self.samples.append((t, self.probe()))
            time.sleep(0.0002)  # release the GIL: the fault thread must not queue behind us

    def first_after(
        self, instant: float, hit: Callable[[float, object], float | None]
    ) -> float | None:
        """Seconds from ``instant`` to the first sample ``hit`` says shows the fault."""
        for t, value in self.samples:
            seen = hit(t, value)
            if seen is not None and seen >= instant - 0.0005:
                return max(0.0, seen - instant)
        return None


def refused(addr: str) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            with socket.create_connection(split(addr), timeout=0.2):
                return False
        except ConnectionRefusedError:
            return True
        except OSError:
            return False

    return probe


def actuation(system: LocalSystem, n: int) -> list[float]:
    """Schedule ``n`` of each fault kind; return every actuation time (seconds)."""
    out: dict[str, list[float]] = {}
    link_addr = system.endpoints.links[LINK].listen
    cache = system.endpoints.components["cache"]
    lat = 100

    conns: list[Redis] = []

    def timed_ping() -> float:
        try:
            if not conns:
                conns.append(Redis(link_addr))
            return conns[0].ping()
        except OSError:
            conns.clear()
            return 0.0

    def when_refused(t: float, value: object) -> float | None:
        return t if value else None

    def when_delayed(t: float, rtt: object) -> float | None:
        # a delayed answer shows the toxic in force from (received - latency) on, even
        # when the ping was sent just before the instant
        assert isinstance(rtt, float)
        return t + rtt - lat / 1000 if rtt >= lat / 1000 * 0.9 else None

    cases = [
        ("link down", LinkDown(link=LINK), 0.05, 0.15, refused(link_addr), when_refused),
        ("latency 100 ms", Latency(link=LINK, latency=lat), 0.15, 0.4, timed_ping, when_delayed),
        (
            "kill -9 redis",
            Kill(component="cache"),
            0.1,
            1.0,
            refused(f"{cache.host}:{cache.port}"),
            when_refused,
        ),
    ]
    for label, fault, duration, spacing, probe, hit in cases:
        watcher = Watcher(probe)
        watcher.start()
        t0 = time.monotonic() + 0.2
        schedule = [ScheduledFault(i * spacing, fault, duration) for i in range(n)]
        with run_schedule(system, schedule, t0) as nemesis:
            time.sleep(max(0.0, t0 + n * spacing + 0.2 - time.monotonic()))
        watcher.stop.set()
        watcher.join()
        report = nemesis.report
        times = [watcher.first_after(t0 + s.at, hit) for s in schedule]
        missed = sum(t is None for t in times)
        got = [t for t in times if t is not None]
        out[label] = got
        bad = len(report.ineffective())
        for evidence in report.ineffective()[:2]:
            print(evidence.summary())
        print(
            f"  {label:15s} n={len(got):3d} median {statistics.median(got) * 1e3:6.2f} ms"
            f"  p99 {pct(got, 99) * 1e3:6.2f} ms  max {max(got) * 1e3:6.2f} ms"
            f"  (unobserved {missed}, ineffective evidence {bad})"
        )
    for c in conns:
        c.close()
    return [t for v in out.values() for t in v]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args()
    n = 10 if args.quick else 30
    with LocalBackend().start(load_topology(MINI), seed=1) as system:
        print(f"Actuation time (schedule instant -> fault observed by a watcher), {n} per kind:")
        times = actuation(system, n)
        med, p99 = statistics.median(times) * 1e3, pct(times, 99) * 1e3
        verdict = "ok" if med <= 10 and p99 <= 50 else "MISSED"
        print(
            f"  all             median {med:.2f} ms (target <= 10)  p99 {p99:.2f} ms"
            f" (target <= 50)  {verdict}"
        )
        accuracy(
            system, {50: 40, 200: 15, 1000: 5} if not args.quick else {50: 10, 200: 5, 1000: 3}
        )
        overhead(system, 2000 if not args.quick else 500, 1.0 if not args.quick else 0.5)


if __name__ == "__main__":
    main()
