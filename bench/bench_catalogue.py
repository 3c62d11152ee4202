"""The catalogue, several times in a row: wall time per pass and every verdict per pass.

Runs ``pytest experiments`` (the search experiments deselected: they search, they do not
replay one schedule) ``--passes`` times, each into its own runs directory, then prints
one row per experiment and profile with what each pass showed (``met``: the run did
what its file expects; ``NOT met``: it did not; ``-``: no journal), and whether the
verdict was the same every time. Targets (issue 6): one pass <= 10 minutes; every
verdict identical in 5 passes.

    ./dev bench bench_catalogue [--passes 5] [--backend local|containers] [--runs-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one_pass(runs_dir: Path, backend: str) -> tuple[float, int]:
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
            "not search",
            "--backend",
            backend,
            "--runs-dir",
            str(runs_dir),
        ],
        cwd=ROOT,
        check=False,
    )
    return time.monotonic() - started, done.returncode


def verdicts(runs_dir: Path) -> dict[tuple[str, str], str]:
    """(experiment, profile) -> 'met' / 'NOT met', from every journal in ``runs_dir``."""
    out: dict[tuple[str, str], str] = {}
    for journal in sorted(runs_dir.glob("*/*/journal.json")):
        j = json.loads(journal.read_text())
        key = (j["experiment"]["name"], j["profile"])
        out[key] = "met" if j.get("met") else "NOT met"
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--backend", default="local", choices=["local", "containers"])
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "bench-catalogue")
    args = parser.parse_args()
    passes: list[dict[tuple[str, str], str]] = []
    walls: list[tuple[float, int]] = []
    for i in range(args.passes):
        runs_dir = args.runs_dir / f"pass-{i + 1}"
        wall, rc = one_pass(runs_dir, args.backend)
        walls.append((wall, rc))
        passes.append(verdicts(runs_dir))
        print(f"pass {i + 1}: {wall / 60:.1f} min, pytest exit {rc}", flush=True)
    keys = sorted({k for p in passes for k in p})
    header = " | ".join(f"pass {i + 1}" for i in range(len(passes)))
    print(f"\n| experiment | profile | {header} | same every time |")
    print("|---|---|" + "---|" * len(passes) + "---|")
    stable = 0
    for key in keys:
        seen = [p.get(key, "-") for p in passes]
        same = len(set(seen)) == 1 and seen[0] == "met"
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
