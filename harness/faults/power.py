"""A power loss: a component dies and every byte it wrote but did not sync is gone.

:class:`LoseUnsynced` acts on the component's directories that the topology puts on
LazyFS (`lazyfs: [spool]`, mounted by the backend before the component starts):

- inject: SIGKILL every process of the component (as the power does: no handler
  runs), then discard every unsynced byte of its LazyFS mounts; the evidence is the
  process gone, its port refusing connections, and the count of discarded bytes and
  files (`discarded_bytes`, `discarded_files`), with no unsynced byte left;
- heal: start the component again on what survived (its own recovery: PostgreSQL
  replays its WAL, a spool reads its segments) and wait for its probe.

Without `for:` the component comes back at once (a reboot); with `for: 5s` it stays
dark that long. What was acknowledged and is missing afterwards is what the
acknowledged-writes invariants catch: an application that acknowledges before
`fsync` loses data here, where `kill -9` alone (the page cache survives it) would not.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol, runtime_checkable

from harness.backends import Killable
from harness.faults.base import FaultError, act, need, resolve_components
from harness.faults.evidence import Check, Evidence
from harness.faults.process import gone, restart_dead
from harness.lazyfs.control import LazyFSClient

__all__ = ["LoseUnsynced", "Unsynced"]


@runtime_checkable
class Unsynced(Protocol):
    """A backend that can put a component's directories on LazyFS."""

    def lazyfs(self, name: str) -> Mapping[str, LazyFSClient]: ...


@dataclass(frozen=True)
class LoseUnsynced:
    """Kill the component(s) and discard every byte not yet synced on their LazyFS
    directories; heal restarts them."""

    kind: ClassVar[str] = "lose_unsynced"
    component: str

    def describe(self) -> str:
        return f"power loss of {self.component} (unsynced writes lost)"

    def inject(self, system: Any) -> Evidence:
        need(system, Killable, self.describe())
        need(system, Unsynced, self.describe())
        names = resolve_components(system.topology, self.component)
        mounts = {name: dict(system.lazyfs(name)) for name in names}
        bare = [name for name, m in mounts.items() if not m]
        if bare:
            raise FaultError(
                f"{self.describe()}: {bare} keep no directory on LazyFS; declare one in the"
                " topology (lazyfs: [DIR] on the component)"
            )
        before: dict[str, int | None] = {}
        lost: dict[str, tuple[int, int]] = {}

        def action() -> None:
            for name in names:
                before[name] = system.pid(name)
                system.kill(name, 9)
            for name in names:  # the disk loses its cache only once nothing runs on it
                for directory, client in mounts[name].items():
                    d = client.lose_unsynced()
                    lost[f"{name}:{directory}"] = (d.bytes, d.files)

        def verify(_: None) -> list[Check]:
            checks = [c for name in names for c in gone(system, name, before[name])]
            for name in names:
                for directory, client in mounts[name].items():
                    left = client.stats()
                    discarded, files = lost[f"{name}:{directory}"]
                    checks.append(
                        Check(
                            f"{name}:{directory}",
                            "every unsynced byte discarded",
                            left.dirty_bytes == 0,
                            time.monotonic(),
                            {
                                "discarded_bytes": discarded,
                                "discarded_files": files,
                                "dirty_bytes_left": left.dirty_bytes,
                            },
                        )
                    )
            return checks

        evidence = act(self.describe(), "inject", action, verify)
        return replace(
            evidence,
            figures={
                "discarded_bytes": sum(b for b, _ in lost.values()),
                "discarded_files": sum(f for _, f in lost.values()),
            },
        )

    def heal(self, system: Any) -> Evidence:
        return restart_dead(system, self.component, self.describe())
