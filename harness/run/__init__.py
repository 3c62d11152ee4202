"""Running experiments: `run(experiment, options) -> RunResult` (`lifecycle`; the options
and result in `result`), with the steady-state check (`steady`), the capacity a run is
relative to (`capacity`), the verdicts on the run itself (`verdicts`), what it records
beside them (`records`), the links a run proxies (`proxied`) and the systems kept between
runs (`reuse`)."""

from harness.run.lifecycle import RERUNS, reset_system, run
from harness.run.result import EXIT_INCONCLUSIVE, RunOptions, RunResult, replay_command
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
