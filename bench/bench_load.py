"""Benchmark of the load runner: generator ceiling (next to wrk), schedule accuracy, and
the cost of templated operations.

Starts its own nginx on a free 127.0.0.1 port below 32768 answering every request with a
static JSON 200, then measures, for each case, (a) the highest open-loop rate one runner
process sustains with p99(sent - intended) <= 5 ms and nothing never-sent (rates tried in
order, up to `--attempts` trials each; the search stops at the first rate no trial
passes), with the runner's CPU time per request:

- `reference`: the reference system's declared `show_code` (a GET with a path and a
  header template, a captured token and a kept field);
- `templated`: a PUT whose path, three headers and JSON body are templates over values
  drawn per arrival (a Zipf user, a UUID, an integer, a weighted choice, `${now}`), with
  a capture from the response: what a user's own operations look like;

then prints both ceilings and their ratio (templated / reference), next to `wrk` on the
same target, and (b) schedule accuracy at a fixed 1,000 req/s for 10 s (reference case).
Loopback only, bounded in time; nginx is stopped in a `finally`. Figures from a busy
machine are not figures: run it on a quiet one.

    .venv/bin/python bench/bench_load.py [--quick] [--cases reference,templated]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import resource
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.client import HttpClient
from harness.history import History, percentiles
from harness.load import LoadConfig, LoadResult, run_load
from harness.operations import Mix, Operations, parse_operations
from harness.sut import load_sut
from harness.topology import REFERENCE
from harness.validate import Node
from harness.workload import ClientClass, Constant, Good, Workload, rps

NGINX_CONF = """
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            default_type application/json;
            return 200 '{{"colour":"green","degraded":false}}';
        }}
    }}
}}
"""


def free_port() -> int:
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-32000")


@contextlib.contextmanager
def nginx() -> Iterator[str]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-nginx-"))
    proc = None
    try:
        port = free_port()
        (tmp / "nginx.conf").write_text(NGINX_CONF.format(dir=tmp, port=port))
        proc = subprocess.Popen(
            ["nginx", "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + 5
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"nginx did not start on port {port}: {err}")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def wrk(url: str, seconds: int, connections: int) -> float:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url + "/v1/code/1"],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    m = re.search(r"Requests/sec:\s*([\d.]+)", out)
    if not m:
        raise RuntimeError(f"could not parse wrk output:\n{out}")
    return float(m.group(1))


def use_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


TEMPLATED: dict[str, Any] = {
    "values": {"user": {"zipf": [1, 100000]}},
    "operations": {
        "put_record": {
            "method": "PUT",
            "path": "/v1/buckets/b${bucket}/collections/c/records/${id}",
            "client": "u${user}",
            "headers": {
                "X-Client-Id": "${client}",
                "X-Request-Id": "${id}",
                "X-Kind": "${kind}",
            },
            "key": "${id}",
            "values": {
                "id": {"uuid": True},
                "bucket": {"int": [1, 20]},
                "n": {"int": [1, 1000000]},
                "kind": {"choice": ["note", "task", "event"], "weights": [0.6, 0.3, 0.1]},
            },
            "body": {
                "data": {"id": "${id}", "owner": "u${user}", "n": "${n}", "kind": "${kind}"},
                "meta": {"at": "${now}", "tags": ["bench", "${kind}"]},
            },
            "capture": {"colour": {"json": "colour"}},
            "timeout": "3s",
        }
    },
}


def cases() -> dict[str, tuple[Operations, Mix | None]]:
    """The operations of each case and the mix it sends."""
    reference = load_sut(REFERENCE, profile="hardened").operations
    assert reference is not None
    templated = parse_operations(Node(TEMPLATED, "<bench>", "operations"))
    return {"reference": (reference, Mix.of(show_code=1)), "templated": (templated, None)}


def workload(ops: Operations, mix: Mix | None, rate: float, seconds: float, seed: int) -> Workload:
    return Workload(
        Constant(rps(rate), seconds),
        ops,
        mix=mix,
        clients=(ClientClass("good", 1.0, Good(timeout=3.0, max_retries=0, budget=None)),),
        seed=seed,
        followups=False,
    )


async def _trial(
    url: str, case: tuple[Operations, Mix | None], rate: float, seconds: float, seed: int
) -> tuple[LoadResult, History, float]:
    ops, mix = case
    arrivals = list(workload(ops, mix, rate, seconds, seed).schedule().arrivals())
    history = History()
    async with HttpClient(ops, [url]) as client:
        # warm the pool so the first burst does not pay for connection set-up
        await asyncio.gather(
            *(client.invoke(0, a.op, a.args, a.client_id, 3.0) for a in arrivals[:64])
        )
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        c0 = r0.ru_utime + r0.ru_stime
        result = await run_load(
            arrivals,
            client,
            history,
            LoadConfig(max_lateness=0.5, drain=5.0),
            writes=ops.writes,
        )
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = r1.ru_utime + r1.ru_stime - c0
    return result, history, cpu


def trial(
    url: str, case: tuple[Operations, Mix | None], rate: float, seconds: float, seed: int = 1
) -> dict[str, float]:
    result, history, cpu = asyncio.run(_trial(url, case, rate, seconds, seed))
    ok = sum(1 for op in history if op.outcome == "ok")
    late = percentiles(history, (50, 99), value=lambda o: o.lateness)
    lat = percentiles(history, (50, 99))
    return {
        "rate": rate,
        "arrivals": result.arrivals,
        "never_sent": result.never_sent,
        "ok": ok,
        "achieved": ok / seconds,
        "late_p50_ms": late.get(50, 0) * 1e3,
        "late_p99_ms": late.get(99, 0) * 1e3,
        "lat_p50_ms": lat.get(50, 0) * 1e3,
        "lat_p99_ms": lat.get(99, 0) * 1e3,
        "cpu_us_per_req": cpu / max(1, result.ops) * 1e6,
    }


def ceiling(
    url: str,
    name: str,
    case: tuple[Operations, Mix | None],
    rates: list[float],
    seconds: float,
    attempts: int,
) -> dict[str, float] | None:
    """The best passing trial of the rate search (None: no rate passed)."""
    best = None
    for rate in rates:
        passed = False
        for attempt in range(1, attempts + 1):
            t = trial(url, case, rate, seconds, seed=attempt)
            passed = t["never_sent"] == 0 and t["late_p99_ms"] <= 5.0
            print(
                f"  {name:9} offered {rate:>8,.0f}/s #{attempt}: ok {t['achieved']:>8,.0f}/s"
                f" never_sent {t['never_sent']:>6}"
                f" late p50 {t['late_p50_ms']:.2f} p99 {t['late_p99_ms']:.2f} ms"
                f" latency p99 {t['lat_p99_ms']:.2f} ms cpu {t['cpu_us_per_req']:.1f} us/req"
                f" {'PASS' if passed else 'FAIL'}",
                flush=True,
            )
            if passed:
                best = t
                break
        if not passed:
            break
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short trials, to check it works")
    ap.add_argument("--rates", default="4000,6000,8000,10000,12000,14000,16000")
    ap.add_argument("--cases", default="reference,templated")
    ap.add_argument(
        "--attempts",
        type=int,
        default=2,
        help="trials per rate; a rate passes if one does (other tenants cause stalls)",
    )
    args = ap.parse_args()
    loop_name = use_uvloop()
    seconds = 1.0 if args.quick else 5.0
    rates = [float(r) for r in args.rates.split(",")]
    every = cases()
    chosen = {name: every[name] for name in args.cases.split(",")}
    best: dict[str, dict[str, float] | None] = {}
    with nginx() as url:
        print(f"nginx at {url}; loop {loop_name}; cases {', '.join(chosen)}", flush=True)
        wrk_rps = wrk(url, 1 if args.quick else int(seconds), 32)
        print(f"wrk -t1 -c32: {wrk_rps:,.0f} req/s", flush=True)
        for name, case in chosen.items():
            best[name] = ceiling(url, name, case, rates, seconds, args.attempts)
        acc = trial(url, every["reference"], 1000.0, 2.0 if args.quick else 10.0, seed=2)
    print()
    print("== figures ==")
    for name, b in best.items():
        if b is None:
            print(f"{name}: no offered rate passed (p99 lateness <= 5 ms, 0 never-sent)")
            continue
        print(
            f"{name} ceiling (one process, {loop_name}): {b['achieved']:,.0f} req/s ok"
            f" (best of {args.attempts} per rate) at offered {b['rate']:,.0f}/s;"
            f" wrk {wrk_rps:,.0f} req/s; ratio to wrk {b['achieved'] / wrk_rps:.2f};"
            f" p99(sent - intended) {b['late_p99_ms']:.2f} ms;"
            f" CPU {b['cpu_us_per_req']:.1f} us/request; never-sent {b['never_sent']}"
        )
    ref, tmpl = best.get("reference"), best.get("templated")
    if ref and tmpl:
        cpu = tmpl["cpu_us_per_req"] / ref["cpu_us_per_req"]
        print(
            f"templated / reference: {tmpl['achieved'] / ref['achieved']:.2f}x requests/s"
            f" (target >= 0.8); CPU per request {cpu:.2f}x"
        )
    print(
        f"schedule accuracy @1,000 req/s for {acc['arrivals'] / 1000:.0f} s: |sent - intended|"
        f" p50 {acc['late_p50_ms']:.3f} ms p99 {acc['late_p99_ms']:.3f} ms;"
        f" never-sent {acc['never_sent']}; latency p99 {acc['lat_p99_ms']:.2f} ms"
    )


if __name__ == "__main__":
    main()
