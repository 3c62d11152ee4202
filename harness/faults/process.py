"""Process faults on components: kill with any signal, pause and resume, restart, and a
gateway crash (the reverse proxy died, hypothesis 4 of the domain).

Evidence reads the operating system, not the backend's bookkeeping: ``/proc/<pid>``
is gone (or its state is ``T``, stopped), and the component's own port refuses
connections or answers again.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from harness import probes
from harness.backends import Killable, Pausable, Restartable
from harness.faults import wire
from harness.faults.base import FaultError, act, need, resolve_components
from harness.faults.evidence import Check, Evidence

T = TypeVar("T")
TERMINATING = frozenset({"SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT"})


def signal_number(name: str) -> int:
    """``SIGKILL`` / ``KILL`` / ``9`` as a signal number."""
    text = name.strip().upper()
    if text.isdigit():
        return signal.Signals(int(text)).value
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return signal.Signals[text].value
    except KeyError:
        raise FaultError(
            f"unknown signal {name!r}, expected e.g. SIGKILL, SIGTERM, SIGHUP"
        ) from None


def signal_name(name: str) -> str:
    return signal.Signals(signal_number(name)).name


@dataclass(frozen=True)
class Kill:
    """Send ``signal`` to every process of the component(s); heal restarts what died."""

    kind: ClassVar[str] = "kill"
    component: str
    signal: str = "SIGKILL"

    def describe(self) -> str:
        return f"kill {self.component} with {signal_name(self.signal)}"

    def inject(self, system: Any) -> Evidence:
        need(system, Killable, self.describe())
        names = resolve_components(system.topology, self.component)
        sig = signal_number(self.signal)
        terminating = signal_name(self.signal) in TERMINATING
        before: dict[str, int | None] = {}

        def action() -> None:
            for name in names:
                before[name] = system.pid(name)
                system.kill(name, sig)

        def verify(_: None) -> list[Check]:
            if terminating:
                return [c for name in names for c in gone(system, name, before[name])]
            return [
                Check(
                    name,
                    f"{signal_name(self.signal)} delivered to a live process",
                    before[name] is not None,
                    time.monotonic(),
                    {"pid": before[name]},
                )
                for name in names
            ]

        return act(self.describe(), "inject", action, verify)

    def heal(self, system: Any) -> Evidence:
        return restart_dead(system, self.component, self.describe())


@dataclass(frozen=True)
class Crash:
    """A gateway (a component the client reaches) dies with SIGKILL; heal restarts it."""

    kind: ClassVar[str] = "crash"
    component: str

    def describe(self) -> str:
        return f"crash of gateway {self.component}"

    def inject(self, system: Any) -> Evidence:
        need(system, Killable, self.describe())
        names = resolve_components(system.topology, self.component)
        gateways = {c.name for c in system.topology.entrypoints}
        if not set(names) <= gateways:
            raise FaultError(
                f"{self.describe()}: {sorted(set(names) - gateways)} not gateways;"
                f" gateways (reached from 'client'): {sorted(gateways)}"
            )
        before: dict[str, int | None] = {}

        def action() -> None:
            for name in names:
                before[name] = system.pid(name)
                system.kill(name, signal.SIGKILL)

        def verify(_: None) -> list[Check]:
            checks = [c for name in names for c in gone(system, name, before[name])]
            for name in names:
                s = wire.ping(system.endpoints.links[f"client->{name}"].listen, "http", 1.0)
                checks.append(
                    Check(
                        f"client->{name}",
                        "no HTTP answer through the client edge",
                        not s.complete,
                        time.monotonic(),
                        {"error": s.error},
                    )
                )
            return checks

        return act(self.describe(), "inject", action, verify)

    def heal(self, system: Any) -> Evidence:
        return restart_dead(system, self.component, self.describe())


def none_stopped(states: dict[int, str]) -> bool:
    """Whether a resumed tree runs again: it has processes and none is in state T."""
    return bool(states) and not any(s in "Tt" for s in states.values())


def all_stopped(states: dict[int, str]) -> bool:
    """Whether a paused tree is stopped: every process in state T, except children that
    exited just as the stop came (zombies, Z/X: they cannot run, and their stopped parent
    cannot reap them)."""
    return any(s in "Tt" for s in states.values()) and all(s in "TtZX" for s in states.values())


@dataclass(frozen=True)
class Pause:
    """Freeze every process of the component(s) with SIGSTOP; heal sends SIGCONT."""

    kind: ClassVar[str] = "pause"
    component: str

    def describe(self) -> str:
        return f"pause {self.component}"

    def inject(self, system: Any) -> Evidence:
        need(system, Pausable, self.describe())
        names = resolve_components(system.topology, self.component)

        def action() -> None:
            for name in names:
                system.pause(name)

        def verify(_: None) -> list[Check]:
            checks = []
            for name in names:
                states = settle(functools.partial(_states_of, system, name), all_stopped)
                stopped = all_stopped(states)
                checks.append(
                    Check(
                        name,
                        "every process is stopped (state T; Z for children that just exited)",
                        stopped,
                        time.monotonic(),
                        {"processes": len(states), "states": "".join(sorted(states.values()))},
                    )
                )
            return checks

        return act(self.describe(), "inject", action, verify)

    def heal(self, system: Any) -> Evidence:
        need(system, Pausable, self.describe())
        names = resolve_components(system.topology, self.component)

        def action() -> None:
            for name in names:
                system.resume(name)

        def verify(_: None) -> list[Check]:
            checks = []
            for name in names:
                states = settle(functools.partial(_states_of, system, name), none_stopped)
                running = none_stopped(states)
                checks.append(
                    Check(
                        name,
                        "no process is stopped",
                        running,
                        time.monotonic(),
                        {"states": "".join(sorted(states.values()))},
                    )
                )
                checks.append(answers(system, name))
            return checks

        return act(self.describe(), "heal", action, verify)


@dataclass(frozen=True)
class Restart:
    """Kill and start the component(s) again on the same port and data, waiting for ready."""

    kind: ClassVar[str] = "restart"
    component: str

    def describe(self) -> str:
        return f"restart {self.component}"

    def inject(self, system: Any) -> Evidence:
        need(system, Restartable, self.describe())
        names = resolve_components(system.topology, self.component)
        before: dict[str, int | None] = {}

        def action() -> None:
            for name in names:
                before[name] = system.pid(name)
                system.restart(name)

        def verify(_: None) -> list[Check]:
            checks = []
            for name in names:
                pid = system.pid(name)
                checks.append(
                    Check(
                        name,
                        "a new process runs",
                        pid is not None and pid != before[name],
                        time.monotonic(),
                        {"old_pid": before[name], "new_pid": pid},
                    )
                )
                checks.append(answers(system, name))
            return checks

        return act(self.describe(), "inject", action, verify)

    def heal(self, system: Any) -> Evidence:
        return restart_dead(system, self.component, self.describe())


# --- shared evidence ---------------------------------------------------------------------


def settle(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 2.0) -> T:
    """Read until ``done`` (signals are delivered asynchronously) or ``timeout``."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.0005)
        value = read()
    return value


def _states_of(system: Any, name: str) -> dict[int, str]:
    return process_states(system.pid(name))


def process_states(pid: int | None) -> dict[int, str]:
    """State letter (R, S, T, Z, ...) of ``pid`` and its descendants, from /proc."""
    if pid is None:
        return {}
    from harness.sessions import descendants

    states = {}
    for p in [pid, *descendants(pid)]:
        try:
            with open(f"/proc/{p}/stat") as fh:
                states[p] = fh.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
    return states


def gone(system: Any, name: str, pid: int | None) -> list[Check]:
    """The process is gone from /proc and the component's own port refuses connections."""
    now = time.monotonic()
    alive = pid is not None and os.path.exists(f"/proc/{pid}")
    ep = system.endpoints.components[name]
    s = wire.connect(f"{ep.host}:{ep.port}", timeout=0.5)
    return [
        Check(name, "the process is gone", pid is not None and not alive, now, {"pid": pid}),
        Check(
            name,
            f"port {ep.port} refuses connections",
            s.error == "refused",
            time.monotonic(),
            {"error": s.error},
        ),
    ]


def answers(system: Any, name: str) -> Check:
    """The component's readiness probe succeeds on its own port."""
    comp = system.topology.component(name)
    ep = system.endpoints.components[name]
    deadline = time.monotonic() + 10.0
    ok = probes.check(comp.probe, ep.host, ep.port, ep.password)
    while not ok and time.monotonic() < deadline:
        time.sleep(0.02)
        ok = probes.check(comp.probe, ep.host, ep.port, ep.password)
    return Check(
        name, f"answers {probes.describe(comp.probe, ep.host, ep.port)}", ok, time.monotonic()
    )


def restart_dead(system: Any, spec: str, fault: str) -> Evidence:
    """Heal of a kill: restart each matching component that is not running."""
    need(system, Restartable, fault)
    names = resolve_components(system.topology, spec)
    restarted: list[str] = []

    def action() -> None:
        for name in names:
            if not system.is_running(name):
                system.restart(name)
                restarted.append(name)

    def verify(_: None) -> list[Check]:
        checks = []
        for name in names:
            checks.append(
                Check(
                    name,
                    "runs",
                    system.is_running(name),
                    time.monotonic(),
                    {"restarted": name in restarted, "pid": system.pid(name)},
                )
            )
            checks.append(answers(system, name))
        return checks

    return act(fault, "heal", action, verify)
