"""The catalogue, several times in a row: wall time per pass and every verdict per pass.

Runs ``pytest experiments`` (the search experiments deselected: they search, they do not
replay one schedule) ``--passes`` times, each into its own runs directory, then prints
one row per experiment and profile with what each pass showed (``met``: the run did
what its file expects; ``NOT met``: it did not; ``inconclusive``: it could not judge;
``(rerun)``: an inconclusive first run was repeated; ``-``: no journal), whether it was
as expected every time, the mean time per run of each lifecycle phase, how many failed
invariants were blamed on a fault, surge or overload of their run (and which on nothing),
and what sampling the system's metrics cost. Targets: one pass <= 6 minutes; every
verdict as expected in 5 passes.

    ./dev bench bench_catalogue [--passes 5] [--backend local|containers] [--runs-dir DIR]
                                [-k "not search"] [--reuse] [--proxy-all]

By default each experiment gets a fresh system, as in ``./dev test``; ``--reuse`` tries the
opt-in lever (one system per profile, reset between experiments: docs/speed.md), to
compare with. ``--proxy-all`` puts every link through Toxiproxy even where a file says
``system: {proxy: faults}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def one_pass(runs_dir: Path, backend: str, select: str, extra: list[str]) -> tuple[float, int]:
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "experiments",
            "-k",
            select,
            "--harness-backend",
            backend,
            "--harness-runs-dir",
            str(runs_dir),
            *extra,
        ],
        cwd=ROOT,
        check=False,
    )
    return time.monotonic() - started, done.returncode


def journals(runs_dir: Path) -> list[dict[str, Any]]:
    """Every run journal of a pass, oldest first (a rerun follows the run it repeats)."""
    found = sorted(runs_dir.glob("*/2*/journal.json"), key=lambda p: p.parent.name)
    return [json.loads(p.read_text()) for p in found]


def verdicts(runs: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(experiment, profile) -> the outcome of its last run (``met``, ``NOT met``,
    ``inconclusive``), marked ``(rerun)`` when an inconclusive run was repeated."""
    out: dict[tuple[str, str], str] = {}
    for j in runs:
        key = (j["experiment"]["name"], j["profile"])
        word = {"met": "met", "not_met": "NOT met"}.get(j["outcome"], j["outcome"])
        out[key] = word + (" (rerun)" if j.get("rerun_of") else "")
    return out


def phase_times(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Mean seconds per run of each lifecycle phase, and the overhead beside the workload."""
    sums: dict[str, float] = {}
    for j in runs:
        for name, seconds in (j.get("timings_s") or {}).items():
            sums[name] = sums.get(name, 0.0) + seconds
    n = max(1, len(runs))
    means = {k: v / n for k, v in sums.items()}
    means["overhead (all but workload)"] = sum(v for k, v in means.items() if k != "workload")
    return means


def blames(runs: list[dict[str, Any]]) -> tuple[int, list[str]]:
    """Failed invariants with a blame, and the ones blamed on nothing the run injected."""
    total, unblamed = 0, []
    for j in runs:
        for v in j.get("verdicts", []):
            if v.get("valid") is False and v.get("blame"):
                total += 1
                if "no injected fault or overload began" in v["blame"]:
                    unblamed.append(f"{j['experiment']['name']} [{j['profile']}] {v['blame']}")
    return total, unblamed


def metrics_cost(runs: list[dict[str, Any]]) -> str:
    """The sampler's mean CPU per tick and mean read time over the runs that sampled."""
    recs = [j["metrics"] for j in runs if j.get("metrics")]
    cpu = [r["cpu_ms_per_tick"] for r in recs if r.get("cpu_ms_per_tick") is not None]
    reads = [ms for r in recs for ms in (r.get("read_ms") or {}).values()]
    if not recs:
        return "no run sampled metrics"
    return (
        f"{len(recs)} runs sampled metrics: sampler CPU {sum(cpu) / max(1, len(cpu)):.1f} ms"
        f" per tick, mean read {sum(reads) / max(1, len(reads)):.1f} ms per source"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--backend", default="local", choices=["local", "containers"])
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "bench-catalogue")
    parser.add_argument(
        "-k", dest="select", default="not search", help="pytest -k expression [not search]"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="one system per profile, reset between experiments"
    )
    parser.add_argument("--proxy-all", action="store_true", help="every link through Toxiproxy")
    args = parser.parse_args()
    extra = ["-o", "harness_reuse=true"] * args.reuse + ["--harness-proxy-all"] * args.proxy_all
    passes: list[dict[tuple[str, str], str]] = []
    walls: list[tuple[float, int]] = []
    for i in range(args.passes):
        runs_dir = args.runs_dir / f"pass-{i + 1}"
        wall, rc = one_pass(runs_dir, args.backend, args.select, extra)
        walls.append((wall, rc))
        runs = journals(runs_dir)
        passes.append(verdicts(runs))
        reused = sum(1 for j in runs if j.get("reused"))
        print(
            f"pass {i + 1}: {wall / 60:.1f} min, {len(runs)} runs ({reused} on a reused"
            f" system), pytest exit {rc}"
        )
        for name, seconds in phase_times(runs).items():
            print(f"    {name:<28} {seconds:6.2f} s per run")
        total, unblamed = blames(runs)
        print(f"    blame: {total - len(unblamed)} of {total} failed invariants blamed on a")
        print("    fault, surge or overload of their run; on nothing:")
        for line in unblamed:
            print(f"      {line}")
        print(f"    {metrics_cost(runs)}")
        sys.stdout.flush()
    keys = sorted({k for p in passes for k in p})
    header = " | ".join(f"pass {i + 1}" for i in range(len(passes)))
    print(f"\n| experiment | profile | {header} | same every time |")
    print("|---|---|" + "---|" * len(passes) + "---|")
    stable = 0
    for key in keys:
        seen = [p.get(key, "-") for p in passes]
        same = all(v.startswith("met") for v in seen)
        stable += same
        print(f"| {key[0]} | {key[1]} | " + " | ".join(seen) + f" | {'yes' if same else 'NO'} |")
    print(
        f"\n{stable} of {len(keys)} experiment/profile pairs as expected in all "
        f"{len(passes)} passes ({args.backend} backend); wall time per pass: "
        + ", ".join(f"{w / 60:.1f} min" for w, _ in walls)
    )
    return 0 if stable == len(keys) and all(rc == 0 for _, rc in walls) else 1


if __name__ == "__main__":
    sys.exit(main())
