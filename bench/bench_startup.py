"""Start-up and teardown of the full reference topology on the local backend.

Prints, for ``--runs`` runs (default 7) of the hardened reference topology (2 nginx
gateways, 2 app workers, PostgreSQL, Redis, Toxiproxy with every link):
the first run with an empty template cache (initdb included), then the median, min and
max of "ready" (from the call to every probe green) and of teardown with a warm
template, and the per-component readiness of the median run. Targets:
ready <= 1.0 s median, teardown <= 0.3 s.

    ./dev bench bench_startup [--runs 7] [--profile hardened]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from harness.backends.local import LocalBackend
from harness.sessions import base_dir
from harness.topology import load_topology


def one_run(backend: LocalBackend, profile: str) -> tuple[float, float, dict[str, float]]:
    topo = load_topology(profile=profile)
    started = time.monotonic()
    with backend.start(topo) as system:
        ready = time.monotonic() - started
        per_component = dict(system.timings.per_component) if system.timings else {}
        closing = time.monotonic()
    return ready, time.monotonic() - closing, per_component


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--profile", default="hardened")
    args = parser.parse_args()

    cold_templates = Path(tempfile.mkdtemp(prefix="templates-", dir=base_dir()))
    try:
        cold, _, _ = one_run(LocalBackend(templates=cold_templates), args.profile)
    finally:
        shutil.rmtree(cold_templates, ignore_errors=True)

    warm = LocalBackend()
    one_run(warm, args.profile)  # make sure the shared template exists
    runs = [one_run(warm, args.profile) for _ in range(args.runs)]
    ready = [r[0] for r in runs]
    teardown = [r[1] for r in runs]
    median_run = sorted(runs, key=lambda r: r[0])[len(runs) // 2]

    print(f"profile={args.profile} runs={args.runs}")
    print(
        "per-component readiness of the median run (s): "
        + ", ".join(f"{k}={v:.3f}" for k, v in sorted(median_run[2].items(), key=lambda kv: kv[1]))
    )
    print(f"first run, empty template cache (initdb included): ready {cold:.3f} s")
    print(
        f"ready, warm template:  median {statistics.median(ready):.3f} s"
        f"  min {min(ready):.3f}  max {max(ready):.3f}   (target <= 1.0 s median)"
    )
    print(
        f"teardown:              median {statistics.median(teardown):.3f} s"
        f"  min {min(teardown):.3f}  max {max(teardown):.3f}   (target <= 0.3 s)"
    )


if __name__ == "__main__":
    main()
