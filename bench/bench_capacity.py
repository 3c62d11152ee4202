"""Benchmark: the capacity C of a topology's profiles (the reference system's naive and
hardened by default), as the calibration measures it.

Starts each profile with the local backend, seeds it (its domain's seed), and runs the
calibration search (`harness.calibrate`) against its client edge with the system's
declared SLO and mix (its `capacity:` section), printing every step and, last, C for each
profile. Loopback only; each search is bounded by its step count; every process is
stopped when its profile is done. The generator shares the machine's CPUs with the
system, so C is the capacity of this machine with the harness on it.

    .venv/bin/python bench/bench_capacity.py [TOPOLOGY] [--profiles naive,hardened]
        [--step 3] [--slo-ms 300] [--cache]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from harness.backends.local import LocalBackend
from harness.calibrate import CalibrationError, Capacity, CapacitySearch, calibrate
from harness.sut import SystemUnderTest, load_sut
from harness.topology import REFERENCE


def measure(sut: SystemUnderTest, search: CapacitySearch, cache: bool) -> Capacity:
    profile = sut.topology.profile
    t = time.monotonic()
    with LocalBackend().start(sut.topology) as system:
        sut.domain.seed(system, 1)
        print(f"{profile}: up and seeded in {time.monotonic() - t:.1f} s", flush=True)
        return calibrate(
            system,
            sut,
            search=search,
            cache=cache,
            refresh=not cache,
            log=lambda msg: print(f"  {profile} {msg}", flush=True),
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("topology", nargs="?", type=Path, default=REFERENCE)
    ap.add_argument("--profiles", help="comma-separated (default: every profile it declares)")
    ap.add_argument("--step", type=float, default=3.0, help="seconds per search step")
    ap.add_argument("--slo-ms", type=float, help="override the declared SLO's p99 bound")
    ap.add_argument("--start", type=float, default=200.0, help="first rate tried, req/s")
    ap.add_argument("--max-steps", type=int, default=10)
    ap.add_argument("--cache", action="store_true", help="use and update the calibration cache")
    args = ap.parse_args()
    search = CapacitySearch(start_rps=args.start, step_seconds=args.step, max_steps=args.max_steps)
    profiles = args.profiles.split(",") if args.profiles else list(load_sut(args.topology).profiles)
    results: dict[str, Capacity] = {}
    for profile in profiles:
        sut = load_sut(args.topology, profile=profile)
        if sut.slo is None:
            sys.exit(f"{args.topology}: no capacity: declare operations: and capacity:")
        if args.slo_ms is not None:
            sut = dataclasses.replace(sut, slo=dataclasses.replace(sut.slo, p99_ms=args.slo_ms))
        try:
            results[profile] = measure(sut, search, args.cache)
        except CalibrationError as exc:
            sys.exit(f"{profile}: {exc}")
    print()
    print("== figures ==")
    for profile, cap in results.items():
        print(
            f"capacity C ({profile}): {cap.rps:,.0f} req/s (SLO op p99 {cap.p99 * 1e3:.1f} ms"
            f" <= {cap.slo_p99 * 1e3:.0f} ms; bound: {cap.bound}; {len(cap.steps)} steps"
            f" of {args.step:g} s; load average before {cap.load_before})"
        )
    print(f"key: {next(iter(results.values())).key if results else '-'}")


if __name__ == "__main__":
    main()
