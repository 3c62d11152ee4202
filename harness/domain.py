"""The domain: what a system under test adds to its topology in code, behind one small
protocol the topology names (`domain: mypackage.checks:MyDomain`).

The harness knows no particular system. Whatever it needs beyond starting components
comes from data in the topology file (operations, `settle:`, `state:`, invariant presets)
or from this protocol, whose every method has a data-driven default in `DataDomain`:

- `seed(system, seed, reset=)`: after start, and with `reset=True` between reused runs;
  default: the topology's `seed:` / `reset:` commands;
- `settle(system)`: after the workload, before the final reads; default: the topology's
  `settle:` probe, if any;
- `read_state(system, tag, wanted)`: the final reads for data invariants; default: the
  topology's `state:` readers;
- `check_params(params)`: when an experiment is loaded; default: nothing to check;
- `switches(params)`: single-mechanism switches, for ablation; default: none;
- `invariants()`: extra invariant kinds, in code; default: none.

A domain subclasses `DataDomain` and overrides what it needs; the reference system's
(`reference_system/domain.py`) validates its settings overrides and lists its switches.
The factory the topology names is called with the keyword arguments `DataDomain` takes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from harness.backends import System
from harness.invariants.registry import Kind
from harness.state import Reading, Settle, StateReader, read, settle

__all__ = ["DataDomain", "Domain", "Problem", "Switch"]


@dataclass(frozen=True)
class Problem:
    """A parameter the domain refuses: its key path (`overrides.cache`), value, and what
    was expected."""

    key: str
    value: Any
    expected: str


@dataclass(frozen=True)
class Switch:
    """One resilience mechanism that can be turned off on its own: `params` is what an
    experiment's `system:` section sets to turn it off (e.g. `{overrides: {cache: false}}`)."""

    name: str
    params: Mapping[str, Any]
    description: str = ""


@runtime_checkable
class Domain(Protocol):
    """What the harness asks of a system under test beyond its topology."""

    def seed(self, system: System, seed: int, *, reset: bool = False) -> None: ...

    def settle(self, system: System) -> str | None: ...

    def read_state(
        self, system: System, tag: str, wanted: Mapping[str, Sequence[str]]
    ) -> Mapping[str, Reading]: ...

    def check_params(self, params: Mapping[str, Any]) -> tuple[Problem, ...]: ...

    def switches(self, params: Mapping[str, Any]) -> tuple[Switch, ...]: ...

    def invariants(self) -> Mapping[str, Kind]: ...


class DataDomain:
    """The domain as the topology file declares it (see the module docstring)."""

    def __init__(
        self,
        *,
        settle: Settle | None = None,
        state: Mapping[str, StateReader] | None = None,
        root: Path | None = None,
    ) -> None:
        self._settle = settle
        self._state = dict(state or {})
        self._root = root

    def seed(self, system: System, seed: int, *, reset: bool = False) -> None:
        system.seed(seed, reset=reset)

    def settle(self, system: System) -> str | None:
        return None if self._settle is None else settle(system, self._settle)

    def read_state(
        self, system: System, tag: str, wanted: Mapping[str, Sequence[str]]
    ) -> Mapping[str, Reading]:
        out = {}
        for name, keys in wanted.items():
            reader = self._state.get(name)
            if reader is None:
                out[name] = Reading(name, None, f"no state reader {name!r}")
            else:
                out[name] = read(system, reader, tag, keys, self._root)
        return out

    def check_params(self, params: Mapping[str, Any]) -> tuple[Problem, ...]:
        return ()

    def switches(self, params: Mapping[str, Any]) -> tuple[Switch, ...]:
        return ()

    def invariants(self) -> Mapping[str, Kind]:
        return {}
