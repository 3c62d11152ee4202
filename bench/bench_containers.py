"""Start-up of the full reference topology on the containers backend, next to the local one.

Images cached (built once before timing if stale; the data-dir template image too), the
two backends alternate run by run so both see the same machine load. Prints, for each,
the median, min and max of "ready" (from the call to every probe green) and of teardown,
the per-component readiness of the containers' median run, and the ratio of medians.
Target: containers ready <= 5 s median.

    ./dev bench bench_containers [--runs 5] [--profile hardened]
"""

from __future__ import annotations

import argparse
import statistics
import time

from harness.backends.containers import ContainersBackend
from harness.backends.local import LocalBackend
from harness.topology import load_topology

Run = tuple[float, float, dict[str, float]]


def one_run(backend: ContainersBackend | LocalBackend, profile: str) -> Run:
    topo = load_topology(profile=profile)
    started = time.monotonic()
    with backend.start(topo) as system:
        ready = time.monotonic() - started
        per_component = dict(system.timings.per_component) if system.timings else {}
        closing = time.monotonic()
    return ready, time.monotonic() - closing, per_component


def summary(label: str, runs: list[Run]) -> float:
    ready = [r[0] for r in runs]
    down = [r[1] for r in runs]
    print(
        f"{label:<11} ready median {statistics.median(ready):.3f} s"
        f"  min {min(ready):.3f}  max {max(ready):.3f}"
        f"   teardown median {statistics.median(down):.3f} s"
    )
    return statistics.median(ready)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", default="hardened")
    args = parser.parse_args()

    containers, local = ContainersBackend(), LocalBackend()
    one_run(containers, args.profile)  # images and data template built / confirmed cached
    one_run(local, args.profile)  # local initdb template
    runs: dict[str, list[Run]] = {"containers": [], "local": []}
    for _ in range(args.runs):
        runs["containers"].append(one_run(containers, args.profile))
        runs["local"].append(one_run(local, args.profile))

    print(f"profile={args.profile} runs={args.runs} (alternating, images cached)")
    median_run = sorted(runs["containers"], key=lambda r: r[0])[len(runs["containers"]) // 2]
    print(
        "containers, per-component readiness of the median run (s): "
        + ", ".join(f"{k}={v:.2f}" for k, v in sorted(median_run[2].items(), key=lambda kv: kv[1]))
    )
    on_containers = summary("containers", runs["containers"])
    on_local = summary("local", runs["local"])
    print(
        f"ratio containers/local: {on_containers / on_local:.1f}x"
        f"   (target: containers <= 5.0 s median: {'met' if on_containers <= 5.0 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
