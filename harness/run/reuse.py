"""One running system per profile, reused across runs with a verified reset between them.

Starting, seeding and tearing down a system for every experiment costs seconds each; a
catalogue runs many experiments on the same few systems. A `SystemPool` keeps the system
a run started (one per backend, topology and profile) and hands it to the next run of
the same shape, which resets it (`harness.run.reset_system`: toxics cleared, links
enabled, dead components restarted, paused ones resumed, the data back to the seeded
state through the topology's `reset:`, caches with it) and then checks the reset
(`check_reset`). A reset that fails its check falls back to a fresh system.

What shapes a system is its key: backend, topology file, profile, parameters, the links
proxied and the seed. Another key in the same slot tears the kept system down and starts
a fresh one. A run is never kept after a fault whose aftermath a reset cannot undo (a
database loss promotes a standby; a fault kind the harness does not know), nor after a
run that aborted or could not judge; a run on a reused system that aborts or could not
judge is run again on a fresh one.

    with SystemPool() as pool:
        for exp in experiments:
            result = run(exp, options, pool=pool)
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from harness import probes
from harness.backends import Killable, System
from harness.errors import HarnessError
from harness.faults import Crash, Kill, LinkDown, Pause, Restart, Toxic
from harness.run.proxied import proxied_links

__all__ = ["ResetFailed", "SystemPool", "check_reset", "reuse_key"]

_RESETTABLE = (Toxic, LinkDown, Kill, Crash, Pause, Restart)


class ResetFailed(HarnessError):
    """A reused system did not come back to the state a fresh one starts in."""


def reuse_key(experiment: Any, options: Any) -> tuple[Hashable, Hashable] | None:
    """(slot, key) of the system `experiment` runs on with `options`; None when its system
    must not be shared (a fault whose aftermath a reset cannot undo)."""
    if not all(isinstance(sf.fault, _RESETTABLE) for sf in experiment.faults):
        return None
    backend = options.backend or experiment.system.backend
    sut = experiment.sut(options.profile)
    proxied = proxied_links(experiment, sut.topology, proxy_all=options.proxy_all)
    slot = (backend, str(sut.path), options.profile)
    params = json.dumps(dict(sut.topology.params), sort_keys=True, default=str)
    links = None if proxied is None else tuple(sorted(proxied))
    return slot, (params, links, options.seed)


def check_reset(system: System) -> None:
    """Raise `ResetFailed` unless every link is as the system started (enabled, no toxic,
    the same upstream) and every component runs and answers its probe."""
    links = system.endpoints.links
    try:
        proxies = system.toxiproxy.proxies()
    except Exception as exc:  # an unreachable API is a failed reset, not a crash
        raise ResetFailed(f"Toxiproxy does not answer: {exc}") from None
    for name, link in links.items():
        if not link.proxied:
            continue
        proxy = proxies.get(name)
        if proxy is None:
            raise ResetFailed(f"the proxy of {name} is gone")
        if not proxy.get("enabled", False) or proxy.get("toxics"):
            raise ResetFailed(
                f"{name}: enabled={proxy.get('enabled')} toxics={proxy.get('toxics')}"
            )
        if proxy.get("upstream") != link.upstream:
            raise ResetFailed(f"{name} leads to {proxy.get('upstream')}, not {link.upstream}")
    for name, ep in system.endpoints.components.items():
        if isinstance(system, Killable) and not system.is_running(name):
            raise ResetFailed(f"{name} is not running")
        probe = system.topology.component(name).probe
        if not probes.check(probe, ep.host, ep.port, ep.password):
            raise ResetFailed(f"{name} does not answer {probes.describe(probe, ep.host, ep.port)}")


@dataclass
class _Kept:
    key: Hashable
    system: System
    owner: contextlib.ExitStack


class SystemPool:
    """Systems kept between runs, one per slot (backend, topology, profile)."""

    def __init__(self) -> None:
        self._kept: dict[Hashable, _Kept] = {}
        self.started = 0  # systems handed in for keeping
        self.reused = 0  # runs that took a kept system
        self.failed_resets: list[str] = []  # why a kept system was dropped for a fresh one

    def __enter__(self) -> SystemPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def take(self, experiment: Any, options: Any) -> System | None:
        """The kept system of this run's shape, or None (then the run starts one). A kept
        system of another shape in the same slot is torn down."""
        found = reuse_key(experiment, options)
        if found is None:
            return None
        slot, key = found
        kept = self._kept.get(slot)
        if kept is None:
            return None
        if kept.key != key:
            self.drop(kept.system)
            return None
        self.reused += 1
        return kept.system

    def keep(
        self, experiment: Any, options: Any, system: System, owner: contextlib.ExitStack
    ) -> bool:
        """Keep `system` (its teardown in `owner`) for the next run of its shape; False
        (and `owner` left to the caller) when this run's system must not be shared."""
        found = reuse_key(experiment, options)
        if found is None:
            return False
        slot, key = found
        old = self._kept.get(slot)
        if old is not None and old.system is system:
            old.key = key  # a kept system back from a run: its teardown stays as it was
            return True
        if old is not None:
            self.drop(old.system)
        self._kept[slot] = _Kept(key, system, owner)
        self.started += 1
        return True

    def forget(self, experiment: Any, options: Any) -> None:
        """Tear down the system kept for this run's slot (its run aborted or could not
        judge: the next one starts fresh)."""
        found = reuse_key(experiment, options)
        kept = self._kept.get(found[0]) if found else None
        if kept is not None:
            self.drop(kept.system)

    def drop(self, system: System, why: str | None = None) -> None:
        """Tear `system` down if this pool keeps it (`why`: its reset failed so)."""
        if why is not None:
            self.failed_resets.append(why)
        for slot, kept in list(self._kept.items()):
            if kept.system is system:
                del self._kept[slot]
                kept.owner.close()

    def close(self) -> None:
        """Tear every kept system down."""
        while self._kept:
            _, kept = self._kept.popitem()
            kept.owner.close()
