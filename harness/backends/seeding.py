"""Running a topology's seed (or reset) command on the host, for every backend."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

from harness.errors import ComponentError

__all__ = ["run_seed"]


def run_seed(command: list[str], env: Mapping[str, str]) -> None:
    """Run `command` to completion in a session of its own; a failure raises
    `ComponentError` with the last 20 lines of its output."""
    result = subprocess.run(
        command,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
        start_new_session=True,
    )
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).decode(errors="replace").splitlines()[-20:]
        raise ComponentError("seed", f"{command!r} exited {result.returncode}", "\n".join(tail))
