"""Running experiments: `run(experiment, options) -> RunResult` (`lifecycle`), with the
steady-state check (`steady`), the capacity a run is relative to (`capacity`), the
verdicts on the run itself (`verdicts`), the links a run proxies (`proxied`) and the
systems kept between runs (`reuse`)."""

from harness.run.lifecycle import (
    EXIT_INCONCLUSIVE,
    RERUNS,
    RunOptions,
    RunResult,
    replay_command,
    reset_system,
    run,
)
from harness.run.reuse import SystemPool

__all__ = [
    "EXIT_INCONCLUSIVE",
    "RERUNS",
    "RunOptions",
    "RunResult",
    "SystemPool",
    "replay_command",
    "reset_system",
    "run",
]
