"""The mutation campaign's runner (`tests/mutants/run.py`) without running experiments:
every mutant applies to the current tree and reverts to it byte for byte, says what it
breaks and what should kill it, and the runner's verdicts, kill rate and choice of
experiments follow its rules (runs faked)."""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from harness.ablate import make_plan

ROOT = Path(__file__).resolve().parents[2]
MUTANTS = ROOT / "tests" / "mutants"
PATCHES = sorted(MUTANTS.glob("*.patch"))


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutants_run", MUTANTS / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutants_run"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


runner = _runner()


def test_there_are_at_least_eight_mutants_of_the_reference_system() -> None:
    assert len(PATCHES) >= 8
    for patch in PATCHES:
        touched = re.findall(r"^\+\+\+ b/(\S+)", patch.read_text(), re.M)
        assert touched, patch.name
        assert all(t.startswith("reference_system/") for t in touched), (patch.name, touched)


def _patch(args: list[str], cwd: Path, patch: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["patch", "-p1", "--batch", "--silent", *args, "-i", str(patch)],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("patch", PATCHES, ids=[p.stem for p in PATCHES])
def test_each_mutant_applies_changes_the_code_and_reverts_cleanly(
    patch: Path, tmp_path: Path
) -> None:
    touched = re.findall(r"^\+\+\+ b/(\S+)", patch.read_text(), re.M)
    original = {}
    for rel in touched:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, tmp_path / rel)
        original[rel] = (ROOT / rel).read_bytes()
    assert runner.apply(patch, tmp_path) is None
    assert any((tmp_path / rel).read_bytes() != original[rel] for rel in touched)
    for rel in touched:
        if rel.endswith(".py"):
            compile((tmp_path / rel).read_text(), rel, "exec")  # still Python
    res = _patch(["--reverse"], tmp_path, patch)
    assert res.returncode == 0, res.stdout + res.stderr
    for rel in touched:
        assert (tmp_path / rel).read_bytes() == original[rel], rel
    assert not list(tmp_path.rglob("*.rej")) and not list(tmp_path.rglob("*.orig"))


@pytest.mark.parametrize("patch", PATCHES, ids=[p.stem for p in PATCHES])
def test_each_mutant_says_what_it_breaks_and_what_should_kill_it(patch: Path) -> None:
    about = runner.header(patch)
    assert len(about) > 40, patch.name
    expected = runner.expected_killer(about)
    assert expected != "?", about
    if expected.startswith("killer: "):
        killer = expected.removeprefix("killer: ").split()[0]
        assert (ROOT / "experiments" / f"{killer}.yaml").exists(), (patch.name, killer)
    assert patch.stem in (ROOT / "docs" / "mutants.md").read_text()


def test_the_runner_uses_the_experiments_the_harness_expects_to_pass() -> None:
    chosen = {p.stem for p in runner.catalogue("hardened")}
    plan = make_plan([ROOT / "experiments"], "hardened")
    by_file = {e.path.stem for e in plan.entries if not e.skip}
    assert chosen == by_file


def _args(**kw: object) -> argparse.Namespace:
    base = dict(
        mutant=[],
        experiments=["a.yaml", "b.yaml"],
        profile="hardened",
        seed=1,
        all=False,
        baseline=False,
        python=sys.executable,
        timeout=5.0,
    )
    base.update(kw)
    return argparse.Namespace(**base)


def _fake(monkeypatch: pytest.MonkeyPatch, outcomes: dict[tuple[str, str], str]) -> list[str]:
    """Runs answer from `outcomes[(tree name, experiment)]` (default met); the copied tree
    is one small file the mutants do not touch, so no patch applies but a chosen one."""
    calls: list[str] = []

    def copy_tree(dest: Path) -> None:
        dest.mkdir(parents=True)
        (dest / "f.txt").write_text("one\n")

    def run_experiment(tree: Path, exp: Path, *_: object) -> object:
        calls.append(f"{tree.name}:{exp.stem}")
        outcome = outcomes.get((tree.name, exp.stem), "met")
        failed = ["no_lost_scans"] if outcome == "not_met" else []
        return runner.Run(exp.stem, outcome, failed)

    def apply(patch: Path, tree: Path) -> str | None:
        return None if patch.stem != "broken" else "does not apply"

    monkeypatch.setattr(runner, "copy_tree", copy_tree)
    monkeypatch.setattr(runner, "run_experiment", run_experiment)
    monkeypatch.setattr(runner, "apply", apply)
    return calls


def _patches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, names: list[str]) -> None:
    for n in names:
        (tmp_path / f"{n}.patch").write_text(f"# {n}. Expected killer: a (x).\n")
    monkeypatch.setattr(runner, "MUTANTS", tmp_path)


def test_verdicts_and_the_kill_rate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _patches(tmp_path, monkeypatch, ["m1", "m2", "m3", "broken"])
    calls = _fake(
        monkeypatch,
        {("m1", "a"): "not_met", ("m3", "a"): "inconclusive"},
    )
    results, _ = runner.campaign(_args(), say=lambda _m: None)
    verdicts = {r.mutant: r.verdict for r in results}
    assert verdicts == {"m1": "killed", "m2": "survived", "m3": "unknown", "broken": "not_applied"}
    assert "m1:b" not in calls  # it stops at the first kill
    by_name = {r.mutant: r for r in results}
    assert by_name["m2"].killed_by == "" and by_name["m1"].killed_by == "a (no_lost_scans)"
    text = runner.report(results, [Path("a.yaml"), Path("b.yaml")])
    assert text.startswith("kill rate 50%: 1 killed, 1 survived, 1 unknown, 1 not applied")


def test_all_runs_every_experiment_and_baseline_drops_failing_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _patches(tmp_path, monkeypatch, ["m1"])
    calls = _fake(monkeypatch, {("tree", "b"): "not_met", ("m1", "a"): "not_met"})
    results, experiments = runner.campaign(_args(all=True, baseline=True), say=lambda _m: None)
    assert [e.stem for e in experiments] == ["a"]
    assert calls == ["tree:a", "tree:b", "m1:a"]
    (result,) = results
    assert result.verdict == "killed" and [r.experiment for r in result.runs] == ["a"]


def test_an_unknown_mutant_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit, match="no such mutant"):
        runner.campaign(_args(mutant=["99-nothing"]), say=lambda _m: None)
