"""The reference system stands alone: it never imports the harness."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "app",
    "gateway",
    "seed",
    "settings",
    "tokens",
    "validation",
    "database",
    "breaker",
    "admission",
    "cache",
    "resp",
    "spool",
    "schema",
    "addresses",
]


def test_no_module_imports_the_harness() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {MODULES!r}: importlib.import_module('reference_system.' + m)\n"
        "bad = sorted(m for m in sys.modules if m == 'harness' or m.startswith('harness.'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
