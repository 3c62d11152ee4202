"""The mutation campaign: apply each code-level mutant of the reference system to a copy of
the tree, run experiments on it, and report which mutants the experiments kill.

    .venv/bin/python tests/mutants/run.py                       # every mutant, the catalogue
    .venv/bin/python tests/mutants/run.py --mutant 08-replay-skips-failed-batch \\
        --experiments experiments/db-down.yaml
    .venv/bin/python tests/mutants/run.py --baseline --json runs/mutants.json

Each `tests/mutants/NN-name.patch` is a unified diff against the tree (its `#` header says
what the mutant breaks and which experiment is expected to kill it, or why none can).
For each mutant the tree (the files git tracks, and untracked ones it does not ignore)
is copied to a temporary directory, the patch applied there, and each experiment run
with `harness run FILE --profile hardened` from the copy, with the copy first on
PYTHONPATH, so the components the harness starts run the mutated code. A mutant is
`killed` when a run does not do what its file expects of the profile (an invariant
failed), `survived` when every run did, `unknown` when a run could not judge and none
killed it; the kill rate is killed / (killed + survived). It stops at the first
experiment that kills a mutant unless `--all`.

The experiments default to the catalogue's items that must pass on the profile
(`expect:` pass, no `search:`), read with PyYAML; `--baseline` first runs them on the
unmutated copy and drops any that do not pass there (a failing experiment kills nothing).
This script does not import the harness: it runs it, as a user would.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MUTANTS = Path(__file__).resolve().parent
EXIT_MET, EXIT_NOT_MET, EXIT_INPUT, EXIT_INCONCLUSIVE = 0, 1, 2, 3


@dataclass
class Run:
    experiment: str
    outcome: str  # met | not_met | inconclusive | error
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""


@dataclass
class Result:
    mutant: str
    verdict: str  # killed | survived | unknown | not_applied
    expected: str
    runs: list[Run] = field(default_factory=list)

    @property
    def killed_by(self) -> str:
        return ", ".join(
            f"{r.experiment} ({', '.join(r.failed) or r.note})"
            for r in self.runs
            if r.outcome in ("not_met", "error")
        )


def header(patch: Path) -> str:
    """The patch's `#` header: what it breaks and its expected killer."""
    lines = []
    for line in patch.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return " ".join(lines)


def expected_killer(text: str) -> str:
    m = re.search(r"Expected (killer: [^.]*|to survive)", text)
    return m.group(1) if m else "?"


def catalogue(profile: str) -> list[Path]:
    """The catalogue's experiments that must pass on `profile`."""
    out = []
    for path in sorted((ROOT / "experiments").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if not isinstance(data, dict) or "search" in data:
            continue
        fixed = (data.get("system") or {}).get("profile")
        if fixed is not None and fixed != profile:
            continue
        expect = data.get("expect") or {}
        if isinstance(expect, str) or set(expect) <= {"fail", "others", "may_fail"}:
            mine = expect or "pass"  # one expectation for every profile
        else:
            mine = expect.get(profile, "pass")
        if mine == "pass" or (isinstance(mine, dict) and "fail" not in mine):
            out.append(path)
    return out


def copy_tree(dest: Path) -> None:
    """The files git tracks and the untracked ones it does not ignore, into `dest`."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "-c", "-o", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        rel = raw.decode()
        src = ROOT / rel
        if not src.is_file() or rel.startswith(("runs/", ".venv/")):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def apply(patch: Path, tree: Path) -> str | None:
    """Apply `patch` in `tree`; the error, or None."""
    res = subprocess.run(
        ["patch", "-p1", "--batch", "--forward", "--silent", "-i", str(patch)],
        cwd=tree,
        capture_output=True,
        text=True,
    )
    return None if res.returncode == 0 else (res.stdout + res.stderr).strip()[-400:]


def run_experiment(
    tree: Path, experiment: Path, profile: str, seed: int, python: str, timeout: float
) -> Run:
    try:  # the copy's own file, so a mutant of an experiment's neighbours counts too
        rel: Path = experiment.resolve().relative_to(ROOT)
    except ValueError:
        rel = experiment.resolve()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    command = [python, "-m", "harness.cli", "run", str(rel), "--profile", profile]
    command += ["--seed", str(seed), "--runs-dir", str(tree / "runs")]
    started = time.monotonic()
    try:
        res = subprocess.run(
            command, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return Run(experiment.stem, "error", [], time.monotonic() - started, "timed out")
    took = time.monotonic() - started
    failed = re.findall(r"^  (\S+): fail\b", res.stdout, re.M)
    outcome = {
        EXIT_MET: "met",
        EXIT_NOT_MET: "not_met",
        EXIT_INCONCLUSIVE: "inconclusive",
    }.get(res.returncode, "error")
    note = ""
    if outcome == "error" or (outcome == "not_met" and not failed):
        tail = (res.stdout + res.stderr).strip().splitlines()[-3:]
        note = " / ".join(tail)[-300:]
    return Run(experiment.stem, outcome, failed, took, note)


def campaign(
    args: argparse.Namespace, say: Callable[[str], None] = print
) -> tuple[list[Result], list[Path]]:
    patches = sorted(MUTANTS.glob("*.patch"))
    if args.mutant:
        wanted = set(args.mutant)
        patches = [p for p in patches if p.stem in wanted]
        missing = wanted - {p.stem for p in patches}
        if missing:
            raise SystemExit(f"no such mutant: {sorted(missing)}; see {MUTANTS}")
    experiments = [Path(e) for e in args.experiments] or catalogue(args.profile)
    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        os.chmod(tmp, 0o755)  # components run as their own users (nobody) and import from it
        base = Path(tmp) / "tree"
        copy_tree(base)
        if args.baseline:
            kept = []
            for exp in experiments:
                r = run_experiment(base, exp, args.profile, args.seed, args.python, args.timeout)
                say(f"baseline {exp.stem}: {r.outcome} {' '.join(r.failed)}".rstrip())
                if r.outcome == "met":
                    kept.append(exp)
            experiments = kept
        results = []
        for patch in patches:
            about = header(patch)
            tree = Path(tmp) / patch.stem
            shutil.copytree(base, tree, symlinks=True, ignore=shutil.ignore_patterns("runs"))
            error = apply(patch, tree)
            if error is not None:
                say(f"{patch.stem}: does not apply: {error}")
                results.append(Result(patch.stem, "not_applied", expected_killer(about)))
                shutil.rmtree(tree, ignore_errors=True)
                continue
            result = Result(patch.stem, "survived", expected_killer(about))
            for exp in experiments:
                r = run_experiment(tree, exp, args.profile, args.seed, args.python, args.timeout)
                result.runs.append(r)
                say(f"{patch.stem} x {exp.stem}: {r.outcome} {' '.join(r.failed)}".rstrip())
                if r.outcome in ("not_met", "error"):
                    result.verdict = "killed"
                    if not args.all:
                        break
                elif r.outcome == "inconclusive" and result.verdict == "survived":
                    result.verdict = "unknown"
            if result.verdict == "unknown" and any(
                r.outcome in ("not_met", "error") for r in result.runs
            ):
                result.verdict = "killed"
            results.append(result)
            with contextlib.suppress(OSError):
                shutil.rmtree(tree)
    return results, experiments


def report(results: list[Result], experiments: list[Path]) -> str:
    killed = sum(r.verdict == "killed" for r in results)
    survived = sum(r.verdict == "survived" for r in results)
    judged = killed + survived
    rate = f"{killed / judged:.0%}" if judged else "n/a"
    lines = [
        f"kill rate {rate}: {killed} killed, {survived} survived, "
        f"{sum(r.verdict == 'unknown' for r in results)} unknown, "
        f"{sum(r.verdict == 'not_applied' for r in results)} not applied "
        f"({len(experiments)} experiments)",
        "",
        "| mutant | verdict | killed by | expected |",
        "|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r.mutant} | {r.verdict} | {r.killed_by or '-'} | {r.expected} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutant", action="append", default=[], help="NN-name (repeatable)")
    parser.add_argument("--experiments", nargs="+", default=[], help="default: the catalogue")
    parser.add_argument("--profile", default="hardened")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--all", action="store_true", help="run every experiment per mutant")
    parser.add_argument(
        "--baseline", action="store_true", help="drop experiments failing unmutated"
    )
    parser.add_argument("--json", type=Path, help="write the results as JSON too")
    parser.add_argument("--python", default=sys.executable, help="the harness's interpreter")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    args = parser.parse_args(argv)
    results, experiments = campaign(args)
    text = report(results, experiments)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "results": [asdict(r) for r in results],
            "experiments": [str(e) for e in experiments],
        }
        args.json.write_text(json.dumps(data, indent=1) + "\n")
    return 0 if results and all(r.verdict != "not_applied" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
