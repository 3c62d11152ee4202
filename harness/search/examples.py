"""Running one example of a fault search: the experiment with a given fault schedule added,
on one system per profile that is started once and reset between examples (a fresh one
after a database loss or a broken steady state). `Runner` is what the search needs of it,
so unit tests can pass a fake.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from harness.backends import System, get_backend
from harness.experiment import Experiment
from harness.faults import ScheduledFault
from harness.run import RunOptions, RunResult, run
from harness.run.proxied import proxied_links

__all__ = ["ExampleRunner", "Runner"]


class ExampleRunner:
    """Runs an experiment with a given fault schedule on one reused system per profile.

    Also the engine of the ``fault_example`` pytest fixture, for searches written in Python
    with ``@given(schedule=fault_schedules(...))``. Use as a context manager: the system
    it started is torn down on exit.
    """

    def __init__(
        self,
        experiment: Experiment,
        profile: str,
        *,
        seed: int,
        runs_dir: Path,
        backend: str | None = None,
        capacity: float | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.experiment = experiment
        self.profile = profile
        self.seed = seed
        self.runs_dir = Path(runs_dir)
        self.backend = backend or experiment.system.backend
        self.capacity = capacity
        self.say = say or (lambda _m: None)
        self._stack: contextlib.ExitStack | None = None
        self._system: System | None = None
        self.started_systems = 0
        self.setup_seconds = 0.0  # starting systems and calibrating C, not examples

    def __enter__(self) -> ExampleRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()

    def discard(self) -> None:
        """Tear down the current system (the next example starts a fresh one)."""
        if self._stack is not None:
            stack, self._stack, self._system = self._stack, None, None
            stack.close()

    def system(self) -> System:
        if self._system is None:
            stack = contextlib.ExitStack()
            started = time.monotonic()
            try:
                sut = self.experiment.sut(self.profile)
                self.say(f"starting {sut.topology.name} ({self.profile}) for the search")
                # the schedules to come are unknown without a search space: proxy every link
                proxied = (
                    proxied_links(self.experiment, sut.topology)
                    if self.experiment.search is not None
                    else None
                )
                system = stack.enter_context(
                    get_backend(self.backend).start(sut.topology, seed=self.seed, proxied=proxied)
                )
                sut.domain.seed(system, self.seed)
            except BaseException:
                stack.close()
                raise
            self._stack, self._system = stack, system
            self.started_systems += 1
            self.setup_seconds += time.monotonic() - started
        return self._system

    def run(self, schedule: Sequence[ScheduledFault]) -> RunResult:
        """One run of the experiment with ``schedule`` added to its fixed faults."""
        faults = tuple(self.experiment.faults) + tuple(schedule)
        exp = dataclasses.replace(self.experiment, faults=faults, search=None)
        options = RunOptions(
            profile=self.profile,
            seed=self.seed,
            backend=self.backend,
            runs_dir=self.runs_dir,
            capacity=self.capacity,
            publish=False,
            live=False,
        )
        result: RunResult | None = None
        for attempt in (1, 2):
            try:
                result = run(exp, options, system=self.system())
            except Exception:
                self.discard()  # a setup error may leave the system in any state
                if attempt == 2:
                    raise
                continue
            self.setup_seconds += float(result.timings.get("calibrate", 0.0))
            if self.capacity is None and result.capacity.rps is not None:
                self.capacity = result.capacity.rps
                options = dataclasses.replace(options, capacity=result.capacity.rps)
            if any(sf.fault.kind == "db_loss" for sf in faults):
                self.discard()  # a standby was promoted: this topology cannot be reset
            if result.aborted and attempt == 1:
                self.say(f"steady state broken ({result.aborted}); fresh system, once more")
                self.discard()
                continue
            if result.inconclusive and attempt == 1:
                self.say(f"inconclusive ({result.why}); fresh system, once more")
                self.discard()
                continue
            break
        assert result is not None
        return result


class Runner(Protocol):
    """What the search needs of an example runner (a fake in unit tests)."""

    setup_seconds: float

    def __enter__(self) -> Runner: ...

    def __exit__(self, *exc: object) -> None: ...

    def run(self, schedule: Sequence[ScheduledFault]) -> RunResult: ...
