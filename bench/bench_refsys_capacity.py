"""Show-code capacity of the reference system per profile, measured with wrk.

Two ways to run it:

    # against gateways you already started (PROFILE=URL, repeatable, or the env var)
    python bench/bench_refsys_capacity.py --target hardened=http://127.0.0.1:20080 \\
        --target naive=http://127.0.0.1:20081
    REFSYS_BENCH_TARGETS="hardened=http://...,naive=http://..." python bench/...

    # start each profile with the harness (2 app workers, Toxiproxy on every link), and in
    # the same run a twin gateway + 2 app workers wired to PostgreSQL/Redis directly
    python bench/bench_refsys_capacity.py --harness [--profiles hardened,naive]

    # per experiment: only the links its faults need proxied, against none and all
    python bench/bench_refsys_capacity.py --experiments experiments/*.yaml

For each target: a warm-up, a closed-loop run (wrk, ``--connections``) giving requests/s,
goodput (2xx/s) and p50/p99, then a throttled run at half that rate (wrk ``delay()``)
giving p50/p99 there. Person ids are spread uniformly over 1..100000 by a Lua script;
every request carries its own ``X-Client-Id`` out of 5000 so per-client limits do not
bite. Targets: hardened >= 2,500 req/s with p99 <= 300 ms through every
Toxiproxy hop, p50 <= 5 ms at half that rate, hops costing <= 20%.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

WRK = shutil.which("wrk") or "/usr/bin/wrk"
PEOPLE = 100_000
LUA = """
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
local people = tonumber(os.getenv("BENCH_PEOPLE") or "100000")
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
request = function()
  local id = math.random(1, people)
  return wrk.format("GET", "/v1/code/" .. id, {["X-Client-Id"] = "bench-" .. math.random(1, 5000)})
end
if delay_ms > 0 then
  delay = function() return delay_ms end
end
"""


@dataclass(frozen=True)
class WrkResult:
    """One wrk run."""

    rps: float
    goodput: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: str


@dataclass(frozen=True)
class Measurement:
    label: str
    full: WrkResult
    half: WrkResult


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(
    url: str,
    duration: float,
    connections: int,
    threads: int,
    delay_ms: float = 0,
    script: Path | None = None,
) -> WrkResult:
    env = {**os.environ, "BENCH_PEOPLE": str(PEOPLE), "BENCH_DELAY_MS": f"{delay_ms:.3f}"}
    cmd = [
        WRK,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    non_2xx = int(non.group(1)) if non else 0
    sock = re.search(r"Socket errors: (.*)", out)
    p50 = re.search(r"\s50%\s+(\S+)", out)
    p99 = re.search(r"\s99%\s+(\S+)", out)
    return WrkResult(
        rps=rps,
        goodput=rps * (total - non_2xx) / total if total else 0.0,
        p50_ms=_ms(p50.group(1)) if p50 else float("nan"),
        p99_ms=_ms(p99.group(1)) if p99 else float("nan"),
        requests=total,
        non_2xx=non_2xx,
        socket_errors=sock.group(1).strip() if sock else "",
    )


def measure(label: str, url: str, args: argparse.Namespace, script: Path) -> Measurement:
    run_wrk(url, args.warmup, args.connections, args.threads, script=script)
    full = run_wrk(url, args.duration, args.connections, args.threads, script=script)
    half_rate = max(full.goodput / 2, 1.0)
    conns = max(4, args.connections // 2)
    # Each connection waits `delay` between requests; subtract the expected latency.
    delay = max(conns * 1000.0 / half_rate - 1.5, 0.0)
    half = run_wrk(url, args.duration, conns, args.threads, delay_ms=delay, script=script)
    return Measurement(label, full, half)


def report(results: list[Measurement]) -> None:
    print(
        f"{'target':<34} {'req/s':>8} {'2xx/s':>8} {'p50ms':>7} {'p99ms':>8} {'non2xx':>7}"
        f" | {'half req/s':>10} {'p50ms':>6} {'p99ms':>7}"
    )
    for m in results:
        f, h = m.full, m.half
        print(
            f"{m.label:<34} {f.rps:>8.0f} {f.goodput:>8.0f} {f.p50_ms:>7.2f} {f.p99_ms:>8.1f}"
            f" {f.non_2xx:>7} | {h.rps:>10.0f} {h.p50_ms:>6.2f} {h.p99_ms:>7.1f}"
            + (f"  socket errors: {f.socket_errors}" if f.socket_errors else "")
        )
    by = {m.label: m for m in results}
    for m in results:
        if m.label.endswith("(direct)"):
            base = m.label.replace(" (direct)", "")
            if base in by:
                cost = 1 - by[base].full.goodput / m.full.goodput
                print(f"Toxiproxy hops cost for {base}: {cost:.0%} of capacity")
    sys.stdout.flush()


# -- harness mode ---------------------------------------------------------------------


def _free_port() -> int:
    for _ in range(200):
        port = random.randint(20000, 30000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000..30000")


def _wait_http(url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not ready after {timeout}s")
        time.sleep(0.02)


@contextlib.contextmanager
def direct_twin(profile: str, postgres: str, redis: str, workdir: Path) -> Iterator[str]:
    """Two app workers and a gateway wired to PostgreSQL and Redis without Toxiproxy."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        app_ports = [_free_port(), _free_port()]
        for i, port in enumerate(app_ports):
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "reference_system.app",
                        "--port",
                        str(port),
                        "--postgres",
                        postgres,
                        "--redis",
                        redis,
                        "--profile",
                        profile,
                        "--instance",
                        f"twin-app-{i}",
                        "--spool-dir",
                        str(workdir / f"spool-{i}"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in app_ports:
            _wait_http(f"http://127.0.0.1:{port}/healthz")
        gw_port = _free_port()
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "reference_system.gateway",
                    "--port",
                    str(gw_port),
                    "--dir",
                    str(workdir / "gw"),
                    "--profile",
                    profile,
                    "--instance",
                    "twin-gw",
                    "--upstreams",
                    ",".join(f"127.0.0.1:{p}" for p in app_ports),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        url = f"http://127.0.0.1:{gw_port}"
        _wait_http(url + "/nginx-health")
        yield url
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def harness_mode(args: argparse.Namespace, script: Path) -> list[Measurement]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from harness.backends.local import LocalBackend
    from harness.topology import load_topology

    results = []
    for profile in args.profiles.split(","):
        topo = load_topology(profile=profile)
        with LocalBackend().start(topo, seed=1) as system:
            system.seed(1)
            ep = system.endpoints
            url = ep.gateways[0]
            results.append(measure(f"{profile}", url, args, script))
            if not args.no_direct:
                pg = ep.components["postgres"]
                rd = ep.components["redis"]
                with (
                    tempfile.TemporaryDirectory(prefix="bench-twin-", dir="/dev/shm") as tmp,
                    direct_twin(
                        profile, f"{pg.host}:{pg.port}", f"{rd.host}:{rd.port}", Path(tmp)
                    ) as twin,
                ):
                    results.append(measure(f"{profile} (direct)", twin, args, script))
            report(results[-2:] if not args.no_direct else results[-1:])
    return results


def shapes_mode(args: argparse.Namespace, script: Path) -> list[Measurement]:
    """Per experiment: the capacity with the links its faults need proxied (the others
    direct), against no link proxied; every link proxied kept as the reference figure."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from harness.backends.local import LocalBackend
    from harness.experiment import load_experiment
    from harness.run.proxied import proxied_links
    from harness.topology import load_topology

    experiments = [load_experiment(p) for p in args.experiments]
    results: list[Measurement] = []
    for profile in args.profiles.split(","):
        topo = load_topology(profile=profile)
        shapes: dict[tuple[str, ...] | None, list[str]] = {(): [], None: []}
        for exp in experiments:
            if profile in exp.profiles:
                links = proxied_links(exp, topo)
                shapes.setdefault(None if links is None else tuple(sorted(links)), []).append(
                    exp.name
                )
        measured: dict[tuple[str, ...] | None, Measurement] = {}
        for shape in shapes:
            label = {(): "no proxy", None: "all proxied"}.get(shape, ",".join(shape or ()))
            with LocalBackend().start(topo, seed=1, proxied=shape) as system:
                system.seed(1)
                m = measure(f"{profile} {label}"[:34], system.endpoints.gateways[0], args, script)
            measured[shape] = m
            results.append(m)
        report(results[-len(measured) :])
        bare = measured[()].full.goodput
        for shape, names in shapes.items():
            cost = 1 - measured[shape].full.goodput / bare if bare else float("nan")
            for name in names or ([] if shape == () else ["(every link proxied)"]):
                print(f"hop cost {profile} {name}: {cost:.0%} of the capacity without proxies")
        sys.stdout.flush()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target", action="append", default=[], metavar="PROFILE=URL")
    parser.add_argument(
        "--harness", action="store_true", help="start each profile with the harness's local backend"
    )
    parser.add_argument("--profiles", default="hardened,naive")
    parser.add_argument(
        "--experiments",
        nargs="+",
        type=Path,
        default=[],
        help="per experiment: C with only the links its faults need proxied (hop cost)",
    )
    parser.add_argument(
        "--no-direct", action="store_true", help="harness mode: skip the twin without Toxiproxy"
    )
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    targets = list(args.target)
    env = os.environ.get("REFSYS_BENCH_TARGETS")
    if env:
        targets += [t for t in env.split(",") if t.strip()]
    if not targets and not args.harness and not args.experiments:
        parser.error(
            "give --target PROFILE=URL (or REFSYS_BENCH_TARGETS), --harness or --experiments"
        )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA)
        script = Path(f.name)
    try:
        results: list[Measurement] = []
        for t in targets:
            label, sep, url = t.partition("=")
            if not sep:
                label, url = url or t, t
            results.append(measure(label, url.rstrip("/"), args, script))
        if targets:
            report(results)
        if args.harness:
            print("\nall:")
            report(results + harness_mode(args, script))
        if args.experiments:
            shapes_mode(args, script)
    finally:
        script.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
