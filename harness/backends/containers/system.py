"""The containers backend and the system it runs: starting a topology as containers on a
private network (Toxiproxy first for linked components, the rest in parallel), the
abilities faults use (kill with any signal, pause, restart, data loss, disconnect from
the network, logs), and teardown. The package docstring tells the whole design.

    with ContainersBackend().start(load_topology(profile="hardened"), seed=1) as system:
        system.seed(1)
        system.disconnect("app-1")  # off the network; ``reconnect`` brings it back
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from harness.backends.containers.housekeeping import (
    COMPONENT_LABEL,
    SESSION_DIR_LABEL,
    SESSION_LABEL,
    reap_containers,
    remove_container,
)
from harness.backends.containers.inside import (
    DATA_DIR,
    PRELUDE,
    RUN_DIR,
    InsideView,
    unloopback,
)
from harness.backends.containers.layout import (
    HOST,
    TOXIPROXY_IMAGE,
    TOXIPROXY_NAME,
    Layout,
    publish_port,
)
from harness.backends.containers.proxy import NetworkToxiproxy, toxiproxy_container
from harness.backends.containers.readiness import ProbeWait
from harness.backends.seeding import run_seed
from harness.backends.startup import StartTimings, start_in_parallel
from harness.errors import ComponentError, ConfigError, HarnessError
from harness.images import build as images
from harness.ports import PortAllocator
from harness.sessions import LABEL, Session, base_dir, descendants, reap
from harness.tools import find_binary
from harness.topology import Component, Probe, RenderContext, Topology, render

__all__ = ["ContainersBackend", "ContainersSystem"]

_LIVE: weakref.WeakSet[ContainersSystem] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for system in list(_LIVE):
        system.close()


class ContainersBackend:
    """Starts topologies as Docker containers (testcontainers) on a private network."""

    name = "containers"

    def __init__(self, ready_timeout: float = 60.0, base: Path | None = None) -> None:
        self.ready_timeout = ready_timeout
        self.base = base

    @contextlib.contextmanager
    def start(
        self, topology: Topology, *, seed: int = 1, proxied: Collection[str] | None = None
    ) -> Iterator[ContainersSystem]:
        """Start `topology`; every link is proxied whatever `proxied` says (a component
        reaches its peers by the Toxiproxy container's name)."""
        system = ContainersSystem(topology, seed, self.ready_timeout, self.base or base_dir())
        try:
            system.start()
            yield system
        finally:
            system.close()


class ContainersSystem:
    """A running topology of containers, with every ability faults need."""

    backend_name = ContainersBackend.name

    def __init__(self, topology: Topology, seed: int, ready_timeout: float, base: Path) -> None:
        self.topology = topology
        self.seed_value = seed
        self.ready_timeout = ready_timeout
        self.base = base
        self.containers: dict[str, DockerContainer] = {}
        self.holders: dict[str, DockerContainer] = {}  # name -> its network namespace
        self.volumes: dict[str, str] = {}
        self.timings: StartTimings | None = None
        self.session: Session | None = None
        self.network: Network | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._closed = False
        self._ports: PortAllocator | None = None
        self._recreate: dict[str, str] = {}  # name -> "empty" | "template"
        self.volume_paths: dict[str, str] = {}

    # --- start ---------------------------------------------------------------------------
    def start(self) -> None:
        started = time.monotonic()
        _LIVE.add(self)
        self.engine = images.client()
        reap(self.base)
        reap_containers(self.engine)
        self.session = Session.open(self.base)
        sid = self.session.id
        self.labels = {SESSION_LABEL: sid, SESSION_DIR_LABEL: str(self.session.dir)}
        topo = self.topology
        self.images = self._images()

        self._ports = PortAllocator(self.base, sid, HOST)
        self.layout = Layout.allocate(topo, self._ports)
        self.ctx = RenderContext(
            topology=topo,
            host=TOXIPROXY_NAME,
            ports=self.layout.inside,
            link_ports=self.layout.link_inside,
            run_dir=Path(RUN_DIR),
            seed=self.seed_value,
            find_binary=lambda name: name,
            python="python3",
        )
        self.host_ctx = RenderContext(
            topology=topo,
            host=HOST,
            ports=self.layout.published,
            link_ports=self.layout.link_published,
            run_dir=self.session.dir,
            seed=self.seed_value,
            find_binary=find_binary,
            python=sys.executable,
            secrets=self.ctx.secrets,  # one ${secret:NAME} for the containers and the host
        )
        passwords = {
            c.name: render(c.password, self.host_ctx, c.name)
            for c in topo.components
            if c.password is not None
        }
        self.endpoints = self.layout.endpoints(topo, passwords)
        self.toxiproxy = NetworkToxiproxy(self.endpoints.toxiproxy, self.layout.to_network(topo))
        self.view = InsideView(topo, self.ctx, self.layout.inside, sid)

        self.network = Network(docker_network_kw={"labels": dict(self.labels)})
        self.network.name = f"harness-{sid}"
        self.network.create()

        tox_ready: dict[str, float] = {}

        def start_proxy() -> None:
            self._run_toxiproxy()
            tox_ready[TOXIPROXY_NAME] = time.monotonic() - started

        # a component's peers resolve through the Toxiproxy container: linked ones wait for it
        per_component = start_in_parallel(
            topo, self._run, start_proxy, self._closing, linked_wait_for_proxy=True
        )
        per_component.update(tox_ready)
        self.timings = StartTimings(time.monotonic() - started, per_component, {})

    def _images(self) -> dict[str, str]:
        """Image ref per component (and Toxiproxy), building project images when stale."""
        refs: dict[str, str] = {}
        for comp in self.topology.components:
            if not comp.image:
                raise ConfigError(
                    self.topology.source,
                    f"components.{comp.group}.image",
                    None,
                    "an image to run the component in (the harness's:"
                    f" {sorted(images.IMAGES)}, or one the topology declares under images:)",
                    "the containers backend runs every component in a container",
                )
            refs.setdefault(comp.image, images.resolve(comp.image, self.engine, self.topology))
        refs.setdefault(TOXIPROXY_IMAGE, images.resolve(TOXIPROXY_IMAGE, self.engine))
        return refs

    def _container_name(self, name: str) -> str:
        return f"harness-{self.labels[SESSION_LABEL]}-{name}"

    def _run(
        self, comp: Component, fresh_volume: bool = False, timeout: float | None = None
    ) -> None:
        """Create and start the component's container, then wait for its probe."""
        from docker.types import Mount

        image = self.images[comp.image or ""]
        mounts = []
        if comp.data_dir:
            if comp.data_dir.init:
                init = [unloopback(self.view.render(t, comp.name)) for t in comp.data_dir.init]
                image = images.data_template(
                    self.engine, image, init, PRELUDE, self.view.env(comp), comp.name
                )
            volume = self._volume(comp.name)
            mounts.append(Mount(DATA_DIR, volume, type="volume", no_copy=fresh_volume))
        holder = self._holder(comp)
        container = (
            DockerContainer(image)
            .with_name(self._container_name(comp.name))
            .with_command([*PRELUDE, *self.view.command(comp)])
            .with_envs(**self.view.env(comp))
            .with_kwargs(
                labels={**self.labels, COMPONENT_LABEL: comp.name},
                init=True,
                mounts=mounts,
                network_mode=f"container:{holder.get_wrapped_container().id}",
            )
            .waiting_for(
                ProbeWait(
                    comp.name,
                    comp.probe,
                    self.layout.published[comp.name],
                    self.ready_timeout if timeout is None else timeout,
                    self._closing,
                    self.endpoints.components[comp.name].password,
                )
            )
        )
        self._start_container(comp.name, container)

    def _holder(self, comp: Component) -> DockerContainer:
        """The component's network namespace (started once, kept across restarts)."""
        holder = self.holders.get(comp.name)
        if holder is not None:
            return holder
        holder = (
            DockerContainer(self.images[comp.image or ""])
            .with_name(self._container_name(comp.name) + "-net")
            .with_network(self._network)
            .with_network_aliases(comp.name)
            .with_command(["sleep", "infinity"])
            .with_kwargs(labels={**self.labels, COMPONENT_LABEL: comp.name}, init=True)
        )
        publish_port(holder, self.layout.inside[comp.name], self.layout.published[comp.name])
        self._start_container(comp.name, holder, self.holders)
        return holder

    def _run_toxiproxy(self) -> None:
        wait = ProbeWait(
            TOXIPROXY_NAME,
            Probe("http", "/version"),
            self.layout.api_port,
            self.ready_timeout,
            self._closing,
        )
        container = toxiproxy_container(
            self.images[TOXIPROXY_IMAGE],
            self._container_name(TOXIPROXY_NAME),
            self._network,
            self.topology,
            self.layout,
            self.labels,
            wait,
        )
        self._start_container(TOXIPROXY_NAME, container)
        proxies = self.toxiproxy.proxies()
        if set(proxies) != set(self.layout.link_inside):
            expected = sorted(self.layout.link_inside)
            raise ComponentError(
                TOXIPROXY_NAME, f"expected proxies {expected}, Toxiproxy has {sorted(proxies)}"
            )

    def _start_container(
        self, name: str, container: DockerContainer, into: dict[str, DockerContainer] | None = None
    ) -> None:
        """Record ``container`` (in ``containers``, or ``into``), then start it."""
        with self._lock:
            if self._closing.is_set():
                raise HarnessError("system is shutting down")
            recorded = self.containers if into is None else into
            recorded[name] = container  # recorded first: teardown finds it whatever fails
        container.start()

    def _volume(self, name: str) -> str:
        volume = f"harness-{self.labels[SESSION_LABEL]}-{name}-data"
        created = self.engine.volumes.create(volume, labels={**self.labels, COMPONENT_LABEL: name})
        self.volumes[name] = volume
        self.volume_paths[name] = created.attrs.get("Mountpoint", "")
        return volume

    # --- abilities -------------------------------------------------------------------------
    def seed(self, seed: int | None = None, reset: bool = False) -> None:
        """Run the topology's seed command on the host, against the published ports (with
        ``reset``: its ``reset:`` command when it has one)."""
        template = self.topology.reset if reset and self.topology.reset else self.topology.seed
        if not template:
            return
        ctx = self.host_ctx
        if seed is not None:
            ctx = RenderContext(**{**ctx.__dict__, "seed": seed})
        command = [render(t, ctx, None) for t in template]
        env = {
            **os.environ,
            **{k: render(v, ctx, None) for k, v in self.topology.seed_env.items()},
            LABEL: self.labels[SESSION_LABEL],
            "HARNESS_COMPONENT": "seed",
        }
        run_seed(command, env)

    def container(self, name: str) -> Any:
        """The docker-py container of a component (fresh state)."""
        try:
            wrapped = self.containers[name].get_wrapped_container()
        except KeyError:
            raise KeyError(
                f"no started component {name!r}; started: {sorted(self.containers)}"
            ) from None
        wrapped.reload()
        return wrapped

    def pid(self, name: str) -> int | None:
        """The host pid of the container's init process, while it runs."""
        state = self.container(name).attrs["State"]
        return state.get("Pid") or None if state.get("Running") else None

    def is_running(self, name: str) -> bool:
        return self.container(name).status in ("running", "paused", "restarting")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the component (``docker kill --signal``); wait while it ends it.

        SIGSTOP and SIGCONT freeze and thaw the whole container (``docker pause``), as
        they stop every process of a component on the local backend.
        """
        if sig == signal.SIGSTOP:
            return self.pause(name)
        if sig == signal.SIGCONT:
            return self.resume(name)
        container = self.container(name)
        if container.status == "paused":
            container.unpause()
        if container.status in ("running", "paused"):
            container.kill(signal=int(sig))
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            with contextlib.suppress(Exception):
                container.wait(timeout=10)

    def pause(self, name: str) -> None:
        """Stop every process of the container (SIGSTOP, as on the local backend, so each
        shows state T); ``docker pause`` where the engine's processes are not visible."""
        if not self._signal_tree(name, signal.SIGSTOP):
            self.container(name).pause()

    def resume(self, name: str) -> None:
        container = self.container(name)
        if container.status == "paused":
            container.unpause()
        self._signal_tree(name, signal.SIGCONT)

    def _signal_tree(self, name: str, sig: int) -> bool:
        pid = self.pid(name)
        if pid is None or not os.path.exists(f"/proc/{pid}"):
            return False
        for each in [pid, *descendants(pid)]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(each, sig)
        return True

    def restart(self, name: str, timeout: float = 30.0) -> None:
        """Kill the container if it runs, start it again (same port, data, files), wait ready."""
        comp = self.topology.component(name)
        if name in self._recreate:  # its disk was lost or renewed: a new container
            self._run(comp, fresh_volume=self._recreate.pop(name) == "empty", timeout=timeout)
            return
        container = self.container(name)
        if container.status == "paused":
            container.unpause()
        if container.status == "running":
            container.kill()
            container.wait(timeout=10)
        container.start()
        wait = ProbeWait(
            name,
            comp.probe,
            self.layout.published[name],
            timeout,
            self._closing,
            self.endpoints.components[name].password,
        )
        wait.wait_until_ready(self.containers[name])

    def wipe_data(self, name: str) -> None:
        """Lose the component's data volume. The container goes with it (a volume cannot be
        removed under it); the next ``restart`` starts a new one on an empty volume."""
        self._drop(name)
        self._recreate[name] = "empty"

    def reinit_data(self, name: str) -> None:
        """Give a component whose disk was lost a fresh data volume (from the cached template);
        the next ``restart`` starts it on that."""
        self._drop(name)
        self._recreate[name] = "template"

    def _drop(self, name: str) -> None:
        if name not in self.volumes:
            raise KeyError(f"{name} has no data_dir; with data: {sorted(self.volumes)}")
        with contextlib.suppress(Exception):
            self.container(name).remove(force=True)
        with contextlib.suppress(Exception):
            self.engine.volumes.get(self.volumes[name]).remove(force=True)

    def data_dir(self, name: str) -> Path:
        """Where the component's data volume lives on the engine's host (gone once wiped)."""
        return Path(self.volume_paths[name])

    def redirect(self, name: str, to: str) -> None:
        """After a failover: ``endpoints.components[name]`` reaches ``to``'s container."""
        self.endpoints = self.endpoints.redirected(name, to)

    @property
    def _network(self) -> Network:
        if self.network is None:
            raise HarnessError("the run's Docker network is not created yet")
        return self.network

    def disconnect(self, name: str) -> None:
        """Take the component off the run's network (its peers lose it; it keeps running)."""
        self.engine.networks.get(self._network.id).disconnect(self._holder_id(name))

    def reconnect(self, name: str) -> None:
        """Put a disconnected component back on the network under its name."""
        self.engine.networks.get(self._network.id).connect(self._holder_id(name), aliases=[name])

    def _holder_id(self, name: str) -> str:
        if name not in self.holders:
            raise KeyError(f"no started component {name!r}; started: {sorted(self.holders)}")
        return str(self.holders[name].get_wrapped_container().id)

    def logs(self, name: str, lines: int = 50) -> str:
        if name not in self.containers:
            return ""
        with contextlib.suppress(Exception):
            return self.container(name).logs(tail=lines).decode(errors="replace").rstrip("\n")
        return ""

    # --- teardown --------------------------------------------------------------------------
    def close(self) -> None:
        """Remove every container, the network and the volumes of the run; safe twice."""
        if self._closed:
            return
        self._closing.set()
        with self._lock:
            self._closed = True
            started = list(self.containers.values())
            holders = list(self.holders.values())
        for batch in (started, holders):  # components first, then the namespaces they use
            threads = [
                threading.Thread(target=remove_container, args=(c,), daemon=True) for c in batch
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
        engine = getattr(self, "engine", None)
        if engine is not None and self.session is not None:
            selector = {"label": f"{SESSION_LABEL}={self.session.id}"}
            with contextlib.suppress(Exception):
                for leftover in engine.containers.list(all=True, filters=selector):
                    leftover.remove(force=True, v=True)
            if self.network is not None and self.network._network is not None:
                with contextlib.suppress(Exception):
                    self.network.remove()
            with contextlib.suppress(Exception):
                for volume in engine.volumes.list(filters=selector):
                    volume.remove(force=True)
            engine.close()
        if self._ports:
            self._ports.release()
        if self.session:
            self.session.close()
        _LIVE.discard(self)
