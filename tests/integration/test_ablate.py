"""`harness ablate` on one small case: one switch against a short database outage (the
full matrix runs on a quiet machine, not in the suite)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHORT = ROOT / "tests" / "fixtures" / "short-db-down.yaml"
pytestmark = pytest.mark.integration


def test_ablate_catches_the_spool_switched_off(tmp_path: Path) -> None:
    md, js = tmp_path / "ablation.md", tmp_path / "ablation.json"
    command = [
        sys.executable,
        "-m",
        "harness.cli",
        "ablate",
        "--profile",
        "hardened",
        str(SHORT),
        "--switch",
        "spool",
    ]
    command += ["--runs-dir", str(tmp_path / "runs"), "--markdown", str(md), "--json", str(js)]
    res = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads(js.read_text())
    (cell,) = data["cells"]
    assert (cell["switch"], cell["experiment"], cell["outcome"]) == (
        "spool",
        "short-db-down",
        "caught",
    )
    assert "scans-acknowledged" in cell["caught_by"]
    assert "1 of 1 mechanisms caught" in md.read_text()
