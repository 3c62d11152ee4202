"""Parallel start-up shared by the backends: every component in its own thread, each
waiting only for the groups it names in ``after`` (and, where a backend needs it, for
the Toxiproxy links), the first error stopping the rest."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.topology import Component, Topology


def start_in_parallel(
    topology: Topology,
    start_one: Callable[[Component], None],
    start_proxy: Callable[[], None],
    closing: threading.Event,
    *,
    linked_wait_for_proxy: bool = False,
) -> dict[str, float]:
    """Run ``start_one`` for every component and ``start_proxy`` beside them; return the
    seconds each component took to be ready. ``closing`` is set on the first error, which
    is raised once every thread has stopped. With ``linked_wait_for_proxy`` a component
    with outgoing links starts only once the proxy is up."""
    per_component: dict[str, float] = {}
    errors: list[BaseException] = []
    ready = {c.name: threading.Event() for c in topology.components}
    proxy_up = threading.Event()

    def wait_for(event: threading.Event) -> bool:
        while not event.wait(0.02):
            if closing.is_set() or errors:
                return False
        return True

    def bring_up(comp: Component) -> None:
        t0 = time.monotonic()
        try:
            for dep in comp.after:
                for member in topology.group(dep) or (topology.component(dep),):
                    if not wait_for(ready[member.name]):
                        return
            linked = linked_wait_for_proxy and topology.links_from(comp.name)
            if linked and not wait_for(proxy_up):
                return
            start_one(comp)
            per_component[comp.name] = time.monotonic() - t0
            ready[comp.name].set()
        except BaseException as exc:
            errors.append(exc)
            closing.set()

    threads = [
        threading.Thread(target=bring_up, args=(c,), daemon=True) for c in topology.components
    ]
    for thread in threads:
        thread.start()
    try:
        start_proxy()
        proxy_up.set()
    except BaseException as exc:
        errors.append(exc)
        closing.set()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.1)
    if errors:
        raise errors[0]
    return per_component


@dataclass(frozen=True)
class StartTimings:
    """How long start-up took, for benchmarks and the journal (seconds)."""

    total: float
    per_component: dict[str, float] = field(default_factory=dict)
    template_builds: dict[str, float] = field(default_factory=dict)
