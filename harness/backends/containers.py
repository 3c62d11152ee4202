"""The containers backend: a topology as Docker containers, started with testcontainers.

Each run gets its own Docker network, ``harness-<session>``. Every component is a
container from the image its topology names (``image:``; the project's images are built
and cached by :mod:`harness.docker.images`), in the network namespace of a small holder
container of its own that sits on the network (alias = component name) and publishes its
ports, as a Kubernetes pod's sandbox does. The holder outlives the component: a killed
component leaves its address behind with nothing listening, so its peers are refused at
once, as they are when a process dies on the local backend (without the holder the
address vanished and connecting to it hung until a timeout).
Toxiproxy is a container too, holding one proxy per link: proxies listen inside it, so a
component reaches ``${link:db}`` as ``toxiproxy:20001``. Every port the harness needs is
published on 127.0.0.1 only: the client edge, the Toxiproxy API, each link's proxy and
each component's own port, so :class:`~harness.backends.Endpoints` holds host addresses.

Inside a container, placeholders mean: ``${host}`` 0.0.0.0 (peers come over the network),
``${dir}`` /harness/run, ``${data_dir}`` /harness/data (a named volume per run, filled
from a cached image of the ``data_dir.init`` result), ``${python}`` python3 and
``${bin:X}`` X (on the image's PATH). A listen address written as loopback
(``--bind 127.0.0.1``, ``listen_addresses=127.0.0.1``) would be unreachable from the
peers, so such arguments are rewritten to 0.0.0.0; the host only sees published loopback
ports either way. The seed command runs on the host against the published ports.

Faults act as on the local backend: toxics and links in the Toxiproxy container (its
client, :class:`NetworkToxiproxy`, speaks host addresses), ``docker kill`` with any
signal, pause as SIGSTOP of the container's processes, restart, data loss as removing the
data volume (``reinit_data`` gives a fresh copy of the template), plus ``disconnect`` /
``reconnect`` of a container from the network. Run the engine without the userland proxy
(``dockerd --userland-proxy=false``, as ``./dev test`` does): with it, a published port
accepts connections even when nothing listens behind it, so a link taken down does not
look refused from the host.

Containers, the network and volumes carry the labels ``harness.session`` and
``harness.session.dir`` (the run's session, see :mod:`harness.sessions`). Ryuk is not
used (its image cannot be pulled everywhere): a run removes what it started, and each
start removes what runs whose session lock is gone left behind.

    with ContainersBackend().start(load_topology(profile="hardened"), seed=1) as system:
        system.seed(1)
        system.disconnect("app-1")  # off the network; ``reconnect`` brings it back
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # before testcontainers reads it

from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network
from testcontainers.core.waiting_utils import WaitStrategy, WaitStrategyTarget

from harness import probes
from harness.backends import ComponentEndpoint, Endpoints, LinkEndpoint
from harness.backends.local import StartTimings
from harness.backends.startup import start_in_parallel
from harness.docker import images
from harness.errors import ComponentError, ConfigError, HarnessError, ReadinessTimeout
from harness.ports import PortAllocator
from harness.sessions import LABEL, Session, base_dir, descendants, is_alive, reap
from harness.tools import find_binary
from harness.topology import Component, Probe, RenderContext, Topology, render
from harness.toxiproxy import ToxiproxyClient, server_env

testcontainers_config.ryuk_disabled = True

HOST = "127.0.0.1"
SESSION_LABEL = "harness.session"
SESSION_DIR_LABEL = "harness.session.dir"
COMPONENT_LABEL = "harness.component"
TOXIPROXY_NAME = "toxiproxy"
TOXIPROXY_IMAGE = "harness-toxiproxy"
TOXIPROXY_API = 8474
LINK_PORT_BASE = 20000
RUN_DIR = "/harness/run"
DATA_DIR = "/harness/data"
_PORTS = {"postgres": 5432, "redis": 6379}  # inside the container; others listen on 8000
_LIVE: weakref.WeakSet[ContainersSystem] = weakref.WeakSet()

# Runs as root: makes the run and data directories, hands them to the component's user,
# then execs the component as that user (``exec`` keeps the pid; docker-init is PID 1).
_PRELUDE_SCRIPT = """
mkdir -p /harness/run
[ -n "$HARNESS_DATA" ] && mkdir -p /harness/data
if [ -n "$HARNESS_USER" ]; then
  id -u "$HARNESS_USER" >/dev/null 2>&1 || HARNESS_USER=nobody
  chown "$HARNESS_USER" /harness/run
  if [ -n "$HARNESS_DATA" ] && [ -z "$(ls -A /harness/data)" ]; then
    chown "$HARNESS_USER" /harness/data && chmod 700 /harness/data
  fi
  exec setpriv --reuid="$HARNESS_USER" --regid="$(id -g "$HARNESS_USER")" --init-groups -- "$@"
fi
exec "$@"
"""
PRELUDE = ["sh", "-c", _PRELUDE_SCRIPT.strip(), "harness-start"]


@atexit.register
def _close_all() -> None:
    for system in list(_LIVE):
        system.close()


def engine_available() -> tuple[bool, str]:
    """Whether a Docker engine answers; if not, the message saying how to get one."""
    try:
        images.client().close()
    except HarnessError as exc:
        return False, str(exc)
    return True, ""


def reap_containers(engine: Any) -> list[str]:
    """Remove containers, networks and volumes of runs whose session is gone (crashed)."""
    dead: set[str] = set()
    selector = {"label": SESSION_LABEL}

    def gone(labels: dict[str, str]) -> bool:
        sid, where = labels.get(SESSION_LABEL, ""), labels.get(SESSION_DIR_LABEL, "")
        if sid in dead:
            return True
        if not where or not Path(where).is_dir() or not is_alive(Path(where)):
            dead.add(sid)
            return True
        return False

    for container in engine.containers.list(all=True, filters=selector):
        if gone(container.labels):
            with contextlib.suppress(Exception):
                container.remove(force=True, v=True)
    for network in engine.networks.list(filters=selector):
        if gone(network.attrs.get("Labels") or {}):
            with contextlib.suppress(Exception):
                network.remove()
    for volume in engine.volumes.list(filters=selector):
        if gone(volume.attrs.get("Labels") or {}):
            with contextlib.suppress(Exception):
                volume.remove(force=True)
    return sorted(dead)


class ProbeWait(WaitStrategy):
    """A testcontainers wait strategy running a harness probe against a published port.

    It fails at once when the container exits, and on timeout says what it waited for,
    the container's state and its recent log.
    """

    def __init__(
        self, name: str, probe: Probe, port: int, timeout: float, closing: threading.Event
    ) -> None:
        super().__init__()
        self.name, self.probe, self.port, self.closing = name, probe, port, closing
        self.with_startup_timeout(int(timeout) if timeout == int(timeout) else 1)
        self.timeout = timeout

    def wait_until_ready(self, container: WaitStrategyTarget) -> None:
        wrapped = container.get_wrapped_container()
        started = time.monotonic()
        pause, checks = 0.005, 0
        while True:
            if probes.check(self.probe, HOST, self.port):
                return
            if self.closing.is_set():
                raise HarnessError(f"{self.name}: start abandoned, the system is shutting down")
            checks += 1
            if checks % 10 == 0:
                wrapped.reload()
                if wrapped.status in ("exited", "dead"):
                    code = wrapped.attrs["State"].get("ExitCode")
                    raise ComponentError(
                        self.name,
                        f"container {wrapped.name} exited with code {code} before it was ready",
                        _tail(wrapped),
                    )
            waited = time.monotonic() - started
            if waited > self.timeout:
                wrapped.reload()
                raise ReadinessTimeout(
                    self.name,
                    f"not ready after {self.timeout:.1f} s waiting for"
                    f" {probes.describe(self.probe, HOST, self.port)}"
                    f" (container {wrapped.name}, status {wrapped.status})",
                    _tail(wrapped),
                )
            time.sleep(pause)
            pause = min(pause * 1.5, 0.02)


def _tail(container: Any, lines: int = 30) -> str:
    try:
        return container.logs(tail=lines).decode(errors="replace").rstrip()
    except Exception as exc:
        return f"(no log: {exc})"


class NetworkToxiproxy(ToxiproxyClient):
    """The Toxiproxy container's API, spoken in host addresses.

    Inside the container, proxies listen on ``0.0.0.0:20001`` and forward to ``db:5432``;
    the harness knows the published ``127.0.0.1:PORT`` of each. Addresses in requests are
    translated to the network's, and those in answers back, so faults can re-point a proxy
    at ``endpoints.components[X]`` as on the local backend.
    """

    def __init__(self, url: str, to_network: dict[str, str]) -> None:
        super().__init__(url)
        self.to_network = to_network
        self.to_host = {inside: host for host, inside in to_network.items()}

    def request(self, method: str, path: str, body: Any = None) -> Any:
        answer = super().request(method, path, _translate(body, self.to_network))
        return _translate(answer, self.to_host)


def _translate(value: Any, table: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            k: table.get(v, v) if k in ("listen", "upstream") and isinstance(v, str)
            else _translate(v, table)
            for k, v in value.items()
        }  # fmt: skip
    if isinstance(value, list):
        return [_translate(v, table) for v in value]
    return value


class ContainersBackend:
    """Starts topologies as Docker containers (testcontainers) on a private network."""

    name = "containers"

    def __init__(self, ready_timeout: float = 60.0, base: Path | None = None) -> None:
        self.ready_timeout = ready_timeout
        self.base = base

    @contextlib.contextmanager
    def start(self, topology: Topology, *, seed: int = 1) -> Iterator[ContainersSystem]:
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
        self.inside = {c.name: _PORTS.get(c.probe.kind, 8000) for c in topo.components}
        self.published = {c.name: self._ports.allocate() for c in topo.components}
        self.link_inside = {link.name: LINK_PORT_BASE + i for i, link in enumerate(topo.links)}
        self.link_published = {link.name: self._ports.allocate() for link in topo.links}
        self.api_port = self._ports.allocate()
        self.ctx = RenderContext(
            topology=topo,
            host=TOXIPROXY_NAME,
            ports=self.inside,
            link_ports=self.link_inside,
            run_dir=Path(RUN_DIR),
            seed=self.seed_value,
            find_binary=lambda name: name,
            python="python3",
        )
        self.host_ctx = RenderContext(
            topology=topo,
            host=HOST,
            ports=self.published,
            link_ports=self.link_published,
            run_dir=self.session.dir,
            seed=self.seed_value,
            find_binary=find_binary,
            python=sys.executable,
        )
        self.endpoints = Endpoints(
            gateways=tuple(
                f"http://{HOST}:{self.link_published['client->' + c.name]}"
                for c in topo.entrypoints
            ),
            toxiproxy=f"http://{HOST}:{self.api_port}",
            components={
                c.name: ComponentEndpoint(
                    c.name, c.group, HOST, self.published[c.name], c.probe.kind
                )
                for c in topo.components
            },
            links={
                link.name: LinkEndpoint(
                    link.name,
                    link.source,
                    link.target,
                    f"{HOST}:{self.link_published[link.name]}",
                    f"{HOST}:{self.published[link.target]}",
                )
                for link in topo.links
            },
        )
        to_network = {
            f"{HOST}:{self.published[c.name]}": f"{c.name}:{self.inside[c.name]}"
            for c in topo.components
        }
        to_network.update(
            {
                f"{HOST}:{self.link_published[name]}": f"0.0.0.0:{inside}"
                for name, inside in self.link_inside.items()
            }
        )
        self.toxiproxy = NetworkToxiproxy(self.endpoints.toxiproxy, to_network)

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
                    "an image to run the component in (e.g. harness-postgres, harness-redis,"
                    f" harness-refsys; project images: {sorted(images.IMAGES)})",
                    "the containers backend runs every component in a container",
                )
            refs.setdefault(comp.image, images.resolve(comp.image, self.engine))
        refs.setdefault(TOXIPROXY_IMAGE, images.resolve(TOXIPROXY_IMAGE, self.engine))
        return refs

    def _render(self, text: str, comp: str) -> str:
        """A placeholder as the component sees it from inside its container."""
        for key, value in (("${host}", "0.0.0.0"), ("${dir}", RUN_DIR), ("${data_dir}", DATA_DIR)):
            text = text.replace(key, value)
        for target in {c.name for c in self.topology.components} | {
            c.group for c in self.topology.components
        }:
            if "${addr:" + target + "}" in text:
                member = (
                    self.topology.group(target)[0].name if self.topology.group(target) else target
                )
                text = text.replace("${addr:" + target + "}", f"{member}:{self.inside[member]}")
        return render(text, self.ctx, comp)

    def _command(self, comp: Component) -> list[str]:
        return [_unloopback(self._render(t, comp.name)) for t in comp.command]

    def _env(self, comp: Component) -> dict[str, str]:
        env = {k: self._render(v, comp.name) for k, v in comp.env.items()}
        env.update({LABEL: self.labels[SESSION_LABEL], "HARNESS_COMPONENT": comp.name})
        env["HARNESS_USER"] = comp.user or ""
        env["HARNESS_DATA"] = "1" if comp.data_dir else ""
        return env

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
                init = [_unloopback(self._render(t, comp.name)) for t in comp.data_dir.init]
                image = images.data_template(
                    self.engine, image, init, PRELUDE, self._env(comp), comp.name
                )
            volume = self._volume(comp.name)
            mounts.append(Mount(DATA_DIR, volume, type="volume", no_copy=fresh_volume))
        holder = self._holder(comp)
        container = (
            DockerContainer(image)
            .with_name(self._container_name(comp.name))
            .with_command([*PRELUDE, *self._command(comp)])
            .with_envs(**self._env(comp))
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
                    self.published[comp.name],
                    self.ready_timeout if timeout is None else timeout,
                    self._closing,
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
            .with_network(self.network)
            .with_network_aliases(comp.name)
            .with_command(["sleep", "infinity"])
            .with_kwargs(labels={**self.labels, COMPONENT_LABEL: comp.name}, init=True)
        )
        holder.ports[f"{self.inside[comp.name]}/tcp"] = (HOST, self.published[comp.name])
        self._start_container(comp.name, holder, self.holders)
        return holder

    def _run_toxiproxy(self) -> None:
        config = [
            {
                "name": name,
                "listen": f"0.0.0.0:{self.link_inside[name]}",
                "upstream": f"{link.target}:{self.inside[link.target]}",
                "enabled": True,
            }
            for name, link in ((lk.name, lk) for lk in self.topology.links)
        ]
        script = (
            'printf "%s" "$TOXIPROXY_CONFIG" > /tmp/proxies.json && exec toxiproxy-server'
            f" -host 0.0.0.0 -port {TOXIPROXY_API} -config /tmp/proxies.json"
        )
        container = (
            DockerContainer(self.images[TOXIPROXY_IMAGE])
            .with_name(self._container_name(TOXIPROXY_NAME))
            .with_network(self.network)
            .with_network_aliases(TOXIPROXY_NAME)
            .with_command(["sh", "-c", script])
            .with_envs(
                TOXIPROXY_CONFIG=json.dumps(config),
                **server_env(),
                **{LABEL: self.labels[SESSION_LABEL]},
            )
            .with_kwargs(labels={**self.labels, COMPONENT_LABEL: TOXIPROXY_NAME}, init=True)
            .waiting_for(
                ProbeWait(
                    TOXIPROXY_NAME,
                    Probe("http", "/version"),
                    self.api_port,
                    self.ready_timeout,
                    self._closing,
                )
            )
        )
        container.ports[f"{TOXIPROXY_API}/tcp"] = (HOST, self.api_port)
        for name, inside in self.link_inside.items():
            container.ports[f"{inside}/tcp"] = (HOST, self.link_published[name])
        self._start_container(TOXIPROXY_NAME, container)
        proxies = self.toxiproxy.proxies()
        if set(proxies) != set(self.link_inside):
            raise ComponentError(TOXIPROXY_NAME, f"expected proxies {sorted(self.link_inside)}"
                                 f", Toxiproxy has {sorted(proxies)}")  # fmt: skip

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
    def seed(self, seed: int | None = None) -> None:
        """Run the topology's seed command on the host, against the published ports."""
        if not self.topology.seed:
            return
        ctx = self.host_ctx
        if seed is not None:
            ctx = RenderContext(**{**ctx.__dict__, "seed": seed})
        command = [render(t, ctx, None) for t in self.topology.seed]
        env = {**os.environ, LABEL: self.labels[SESSION_LABEL], "HARNESS_COMPONENT": "seed"}
        result = subprocess.run(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=300,
            start_new_session=True,
        )
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).decode(errors="replace").splitlines()[-20:]
            raise ComponentError("seed", f"{command!r} exited {result.returncode}", "\n".join(tail))

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
        wait = ProbeWait(name, comp.probe, self.published[name], timeout, self._closing)
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
        from dataclasses import replace

        components = dict(self.endpoints.components)
        target = components[to]
        components[name] = replace(components[name], host=target.host, port=target.port)
        self.endpoints = replace(self.endpoints, components=components)

    def disconnect(self, name: str) -> None:
        """Take the component off the run's network (its peers lose it; it keeps running)."""
        self.engine.networks.get(self.network.id).disconnect(self._holder_id(name))

    def reconnect(self, name: str) -> None:
        """Put a disconnected component back on the network under its name."""
        self.engine.networks.get(self.network.id).connect(self._holder_id(name), aliases=[name])

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
            threads = [threading.Thread(target=_remove, args=(c,), daemon=True) for c in batch]
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


def _remove(container: DockerContainer) -> None:
    with contextlib.suppress(Exception):
        container.stop(force=True, delete_volume=True)


def _unloopback(arg: str) -> str:
    """``127.0.0.1`` as a listen address, in a container, becomes 0.0.0.0 (see module doc)."""
    if arg == HOST:
        return "0.0.0.0"
    if arg.endswith("=" + HOST):
        return arg[: -len(HOST)] + "0.0.0.0"
    return arg
