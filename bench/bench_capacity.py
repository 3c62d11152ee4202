"""Benchmark: the capacity C of the reference system's naive and hardened profiles.

Starts each profile with the local backend, seeds it, and runs the calibration search
(`harness.calibrate`) against its gateways, printing every step and, last, C for each
profile. Loopback only; each search is bounded by its step count; every process is
stopped when its profile is done. The generator shares the machine's CPUs with the
system, so C is the capacity of this machine with the harness on it.

    .venv/bin/python bench/bench_capacity.py [--profiles naive,hardened] [--step 3] [--cache]
"""

from __future__ import annotations

import argparse
import sys
import time

from harness.backends.local import LocalBackend
from harness.calibrate import Capacity, Search, calibrate
from harness.topology import load_topology


def measure(profile: str, search: Search, slo: float, cache: bool) -> Capacity:
    t = time.monotonic()
    with LocalBackend().start(load_topology(profile=profile)) as system:
        system.seed(1)
        print(f"{profile}: up and seeded in {time.monotonic() - t:.1f} s", flush=True)
        return calibrate(
            system,
            slo_p99=slo,
            search=search,
            cache=cache,
            refresh=not cache,
            log=lambda msg: print(f"  {profile} {msg}", flush=True),
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", default="naive,hardened")
    ap.add_argument("--step", type=float, default=3.0, help="seconds per search step")
    ap.add_argument("--slo", type=float, default=0.3, help="show-code p99 SLO in seconds")
    ap.add_argument("--start", type=float, default=200.0, help="first rate tried, req/s")
    ap.add_argument("--max-steps", type=int, default=10)
    ap.add_argument("--cache", action="store_true", help="use and update the calibration cache")
    args = ap.parse_args()
    search = Search(start_rps=args.start, step_seconds=args.step, max_steps=args.max_steps)
    results: dict[str, Capacity] = {}
    for profile in args.profiles.split(","):
        results[profile] = measure(profile, search, args.slo, args.cache)
    print()
    print("== figures ==")
    for profile, cap in results.items():
        print(
            f"capacity C ({profile}): {cap.rps:,.0f} req/s (show-code p99 {cap.p99 * 1e3:.1f} ms"
            f" <= {cap.slo_p99 * 1e3:.0f} ms; bound: {cap.bound}; {len(cap.steps)} steps"
            f" of {args.step:g} s; load average before {cap.load_before:.2f})"
        )
    print(f"key: {next(iter(results.values())).key if results else '-'}")


if __name__ == "__main__":
    sys.exit(main())
