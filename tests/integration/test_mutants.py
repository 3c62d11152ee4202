"""The mutation campaign's runner on one small case: one mutant against a short database
outage (the full campaign runs on a quiet machine, not in the suite)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHORT = ROOT / "tests" / "fixtures" / "short-db-down.yaml"
pytestmark = pytest.mark.integration


def test_the_mutant_runner_kills_a_replayer_that_skips_failed_batches(tmp_path: Path) -> None:
    out = tmp_path / "mutants.json"
    command = [sys.executable, str(ROOT / "tests" / "mutants" / "run.py")]
    command += ["--mutant", "08-replay-skips-failed-batch", "--experiments", str(SHORT)]
    command += ["--json", str(out)]
    res = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    (result,) = json.loads(out.read_text())["results"]
    assert result["verdict"] == "killed", res.stdout
    assert "no_lost_scans" in result["runs"][0]["failed"]
    assert "kill rate 100%" in res.stdout
