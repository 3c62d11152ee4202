"""The local backend: a topology as processes on loopback, started in parallel, torn
down without leaks.

Every component runs in its own process group and session (so a terminal's Ctrl-C
reaches the harness, not the components), labelled with the run's session id. The
harness waits on its own children; it registers as a child subreaper so that
grandchildren orphaned by a kill (PostgreSQL backends, nginx workers) are reparented
to it and reaped here instead of lingering under PID 1. Toxiproxy is started by the
harness itself and holds one proxy per link it is asked to proxy (every link by default);
the others run direct.

    with LocalBackend().start(load_topology(profile="hardened"), seed=1) as system:
        system.seed(1)
        print(system.endpoints.gateways)
        system.kill("gateway-a")
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import datadirs, portguard, probes, shm
from harness.backends import ComponentEndpoint, Endpoints, LinkEndpoint
from harness.backends.seeding import run_seed
from harness.backends.startup import StartTimings, start_in_parallel
from harness.errors import ComponentError, HarnessError, ReadinessTimeout
from harness.lazyfs.control import LazyFSClient
from harness.lazyfs.mounts import Mounts
from harness.ports import PortAllocator
from harness.privileges import unreachable
from harness.sessions import LABEL, Session, base_dir, reap, tree
from harness.tools import TOXIPROXY, find_binary
from harness.topology import (
    Component,
    Probe,
    RenderContext,
    Topology,
    component_dir,
    data_dir_of,
    render,
    render_file,
)
from harness.toxiproxy import SERVER_FLAGS, ProxySpec, ToxiproxyClient, server_env

HOST = "127.0.0.1"
TOXIPROXY_NAME = "toxiproxy"
# The system under test runs at a lower CPU priority than the harness, as if the load came
# from another machine: on two shared cores an open-loop generator that is descheduled
# for tens of milliseconds cannot keep to its schedule. HARNESS_NICE=0 turns it off.
NICE = int(os.environ.get("HARNESS_NICE", "5"))
_PR_SET_CHILD_SUBREAPER = 36


def _lower_group_priority(pid: int) -> None:
    """Give the session led by `pid` the nice value `NICE` as a scheduling group. With the
    kernel's autogroup on (the default of desktop and many server kernels), every session
    is scheduled as one group against the others and a process's own nice value ranks it
    only inside its group: without this a component in a session of its own would get as
    much CPU as the generator, whatever its nice value."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/autogroup", "w") as f:
        f.write(str(NICE))


_LIVE: weakref.WeakSet[LocalSystem] = weakref.WeakSet()


def _become_subreaper() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


@atexit.register
def _close_all() -> None:
    for system in list(_LIVE):
        system.close()


@dataclass
class _Running:
    """One started process of a component."""

    popen: subprocess.Popen[Any]
    log: Path

    @property
    def pgid(self) -> int:
        return self.popen.pid  # start_new_session makes the leader its group's id


class LocalBackend:
    """Starts topologies as local processes."""

    name = "local"

    def __init__(
        self, ready_timeout: float = 30.0, base: Path | None = None, templates: Path | None = None
    ) -> None:
        self.ready_timeout = ready_timeout
        self.base = base
        self.templates = templates

    @contextlib.contextmanager
    def start(
        self, topology: Topology, *, seed: int = 1, proxied: Collection[str] | None = None
    ) -> Iterator[LocalSystem]:
        base = self.base or base_dir()
        templates = self.templates or (base_dir() if self.base else base) / "templates"
        system = LocalSystem(topology, seed, self.ready_timeout, base, templates, proxied)
        try:
            system.start()
            yield system
        finally:
            system.close()


class LocalSystem:
    """A running topology of local processes, with every ability faults need."""

    backend_name = LocalBackend.name

    def __init__(
        self,
        topology: Topology,
        seed: int,
        ready_timeout: float,
        base: Path,
        templates: Path,
        proxied: Collection[str] | None = None,
    ) -> None:
        self.topology = topology
        self.proxied = None if proxied is None else frozenset(proxied)
        self.templates = templates
        self.seed_value = seed
        self.ready_timeout = ready_timeout
        self.base = base
        self.procs: dict[str, _Running] = {}
        self.timings: StartTimings | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._closed = False
        self.session: Session | None = None
        self._kept_root: set[str] = set()  # components whose user cannot run their program
        self._ports: PortAllocator | None = None
        self.mounts = Mounts()  # the directories the topology puts on LazyFS
        # only the harness's user may reach Toxiproxy's API (or why not)
        self.api_guard: portguard.PortGuard | str | None = None

    # --- start ---------------------------------------------------------------------------
    def start(self) -> None:
        started = time.monotonic()
        _become_subreaper()
        _LIVE.add(self)
        reap(self.base)
        self.session = Session.open(self.base)
        self.run_dir = self.session.dir
        self.mounts = Mounts(self.session)
        self._ports = PortAllocator(self.base, self.session.id, HOST)
        topo = self.topology
        ports = {c.name: self._ports.allocate() for c in topo.components}
        # a direct link's address is its target's own: no proxy between them
        link_ports = {
            link.name: self._ports.allocate() if self._proxied(link.name) else ports[link.target]
            for link in topo.links
        }
        tox_port = self._ports.allocate()
        self.ctx = RenderContext(
            topology=topo,
            host=HOST,
            ports=ports,
            link_ports=link_ports,
            run_dir=self.run_dir,
            seed=self.seed_value,
            find_binary=find_binary,
            python=sys.executable,
        )
        self.endpoints = Endpoints(
            gateways=tuple(
                f"http://{HOST}:{link_ports['client->' + c.name]}" for c in topo.entrypoints
            ),
            toxiproxy=f"http://{HOST}:{tox_port}",
            components={
                c.name: ComponentEndpoint(
                    c.name,
                    c.group,
                    HOST,
                    ports[c.name],
                    c.probe.kind,
                    None if c.password is None else render(c.password, self.ctx, c.name),
                )
                for c in topo.components
            },
            links={
                link.name: LinkEndpoint(
                    link.name,
                    link.source,
                    link.target,
                    f"{HOST}:{link_ports[link.name]}",
                    f"{HOST}:{ports[link.target]}",
                    self._proxied(link.name),
                )
                for link in topo.links
            },
        )
        self.toxiproxy = ToxiproxyClient(self.endpoints.toxiproxy)
        builds: dict[str, float] = {}

        tox_dir = self.run_dir / TOXIPROXY_NAME
        tox_dir.mkdir(mode=0o700)
        self.api_guard = portguard.guard(self.session.id, [tox_port])
        if isinstance(self.api_guard, str):
            with open(tox_dir / "output.log", "a") as log:
                log.write(f"# harness: the API is open to every local user: {self.api_guard}\n")
        self._spawn(
            TOXIPROXY_NAME,
            [find_binary(TOXIPROXY), "-host", HOST, "-port", str(tox_port), *SERVER_FLAGS],
            tox_dir,
            env=server_env(),
            owner=None,
        )

        def start_one(comp: Component) -> None:
            built = self._prepare_dirs(comp)
            if built is not None:
                builds[comp.name] = built
            directory = component_dir(self.run_dir, comp.name)
            self.mounts.mount(comp.name, directory, comp.lazyfs, self._owner(comp))
            self._launch(comp)
            self._await_ready(comp.name, comp.probe, ports[comp.name])

        def start_proxy() -> None:
            self._await_ready(TOXIPROXY_NAME, Probe("http", "/version"), tox_port)
            self.toxiproxy.populate(
                ProxySpec(name, link.listen, link.upstream)
                for name, link in self.endpoints.links.items()
                if link.proxied
            )

        per_component = start_in_parallel(topo, start_one, start_proxy, self._closing)
        self.timings = StartTimings(time.monotonic() - started, per_component, builds)

    def _proxied(self, link: str) -> bool:
        return self.proxied is None or link in self.proxied

    def _owner(self, comp: Component) -> tuple[int, int] | None:
        """The uid and gid `comp` runs as: its `user:` when the harness is root and that
        user can execute its program; otherwise the harness's own (said in its log)."""
        if comp.user is None or os.geteuid() != 0:
            return None
        for user in (comp.user, "nobody"):
            with contextlib.suppress(KeyError):
                entry = pwd.getpwnam(user)
                break
        else:
            raise HarnessError(f"{comp.name}: neither user {comp.user!r} nor 'nobody' exists")
        owner = entry.pw_uid, entry.pw_gid
        program = render(comp.command[0], self.ctx, comp.name)
        reason = unreachable(program, *owner)
        if reason is None:
            return owner
        if comp.name not in self._kept_root:
            self._kept_root.add(comp.name)
            with open(component_dir(self.run_dir, comp.name) / "output.log", "a") as log:
                log.write(f"# harness: runs as root, user {user!r} cannot run it: {reason}\n")
        return None

    def _prepare_dirs(self, comp: Component) -> float | None:
        """The component's run directory with its config files (`files:`) rendered into it,
        and its data directory (from the cached template of `data_dir.init`)."""
        directory = component_dir(self.run_dir, comp.name)
        directory.mkdir(mode=0o700)  # its own user only (chowned below)
        owner = self._owner(comp)
        if owner:
            os.chown(directory, *owner)
        for tmpl in comp.files:
            path = directory / tmpl.name
            path.write_text(render_file(tmpl, self.ctx, comp.name), encoding="utf-8")
            if owner:
                os.chown(path, *owner)
        if comp.data_dir is None:
            return None
        return datadirs.prepare(
            comp.name,
            list(comp.data_dir.init),
            lambda data: [
                render(t, self.ctx, comp.name, data_dir=data) for t in comp.data_dir.init
            ],
            data_dir_of(self.run_dir, comp.name),
            self.templates,
            owner,
            self._env(comp.name, {}),
        )

    def _env(self, name: str, extra: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        env.update(extra)
        env[LABEL] = self.session.id if self.session else ""
        env["HARNESS_COMPONENT"] = name
        return env

    def _spawn(
        self,
        name: str,
        command: list[str],
        cwd: Path,
        env: dict[str, str],
        owner: tuple[int, int] | None,
    ) -> None:
        with self._lock:
            if self._closing.is_set():
                raise HarnessError("system is shutting down")
            log = cwd / "output.log"
            kwargs: dict[str, Any] = (
                {"user": owner[0], "group": owner[1], "extra_groups": []} if owner else {}
            )
            if owner and "HOME" not in env:  # the harness's own home may be closed to it
                env = {**env, "HOME": str(cwd)}
            nice = shutil.which("nice") if NICE else None
            if nice:  # nice execs the command: the pid, and every ability, stay the same
                command = [nice, "-n", str(NICE), *command]
            with open(log, "ab") as out:
                try:
                    popen = subprocess.Popen(
                        command,
                        cwd=cwd,
                        env=self._env(name, env),
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        **kwargs,
                    )
                except OSError as exc:
                    raise ComponentError(name, f"cannot run {command!r}: {exc}") from None
            if NICE:
                _lower_group_priority(popen.pid)
            self.procs[name] = _Running(popen, log)
            if self.session:
                self.session.record_group(popen.pid)

    def _launch(self, comp: Component) -> None:
        command = [render(t, self.ctx, comp.name) for t in comp.command]
        env = {k: render(v, self.ctx, comp.name) for k, v in comp.env.items()}
        self._spawn(
            comp.name, command, component_dir(self.run_dir, comp.name), env, self._owner(comp)
        )

    def _await_ready(
        self, name: str, probe: Probe, port: int, timeout: float | None = None
    ) -> None:
        timeout = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        pause = 0.005
        while True:
            running = self.procs.get(name)
            if running is not None and running.popen.poll() is not None:
                raise ComponentError(
                    name,
                    f"exited with code {running.popen.returncode} before it was ready",
                    self.logs(name),
                )
            if probes.check(probe, HOST, port, self._password(name)):
                return
            if self._closing.is_set():
                raise HarnessError(f"{name}: start abandoned, the system is shutting down")
            if time.monotonic() > deadline:
                raise ReadinessTimeout(
                    name,
                    f"not ready after {timeout:.1f} s"
                    f" waiting for {probes.describe(probe, HOST, port)}",
                    self.logs(name),
                )
            time.sleep(pause)
            pause = min(pause * 1.5, 0.02)

    def _password(self, name: str) -> str | None:
        endpoint = self.endpoints.components.get(name)  # Toxiproxy is no component
        return None if endpoint is None else endpoint.password

    # --- abilities -------------------------------------------------------------------------
    def seed(self, seed: int | None = None, reset: bool = False) -> None:
        """Run the topology's seed command (if any) against the running system; with
        ``reset``, its ``reset:`` command instead when it has one (a used system back to
        the seeded state, fast)."""
        template = self.topology.reset if reset and self.topology.reset else self.topology.seed
        if not template:
            return
        ctx = self.ctx if seed is None else RenderContext(**{**self.ctx.__dict__, "seed": seed})
        command = [render(t, ctx, None) for t in template]
        env = {k: render(v, ctx, None) for k, v in self.topology.seed_env.items()}
        run_seed(command, self._env("seed", env))

    def pid(self, name: str) -> int | None:
        running = self.procs.get(name)
        return running.popen.pid if running and running.popen.poll() is None else None

    def is_running(self, name: str) -> bool:
        return self.pid(name) is not None

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the component; reap it when the signal ends it.

        SIGKILL, SIGSTOP and SIGCONT reach every process of the component (the machine
        died or froze); other signals go to its leader's process group, which handles
        them as it would from an operator (PostgreSQL's smart/fast/immediate shutdown).
        """
        running = self._running(name)
        pids = _tree(running)
        segments = shm.mapped_segments(pids) if sig == signal.SIGKILL else shm.Segments()
        if sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCONT):
            _signal_tree(running, sig, pids)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(running.pgid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            _reap(running, pids, timeout=10.0)
        shm.unlink(segments)

    def pause(self, name: str) -> None:
        _signal_tree(self._running(name), signal.SIGSTOP)

    def resume(self, name: str) -> None:
        _signal_tree(self._running(name), signal.SIGCONT)

    def restart(self, name: str, timeout: float = 30.0) -> None:
        """Kill the component if it runs, start it again on the same port and data, wait ready."""
        comp = self.topology.component(name)
        if name in self.procs:
            self.kill(name, signal.SIGKILL)
        self._launch(comp)
        self._await_ready(name, comp.probe, self.ctx.ports[name], timeout)

    def wipe_data(self, name: str) -> None:
        """Delete the component's data directory (the disk is lost); it must be re-created."""

        shutil.rmtree(data_dir_of(self.run_dir, name), ignore_errors=True)

    def data_dir(self, name: str) -> Path:
        return data_dir_of(self.run_dir, name)

    def lazyfs(self, name: str) -> Mapping[str, LazyFSClient]:
        """The component's directories on LazyFS and their control clients."""
        return self.mounts.clients(name)

    def logs(self, name: str, lines: int = 50) -> str:
        running = self.procs.get(name)
        if running is None or not running.log.exists():
            return ""
        with open(running.log, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            return "\n".join(fh.read().decode(errors="replace").splitlines()[-lines:])

    def _running(self, name: str) -> _Running:
        try:
            return self.procs[name]
        except KeyError:
            raise KeyError(
                f"no started component {name!r}; started: {sorted(self.procs)}"
            ) from None

    # --- teardown --------------------------------------------------------------------------
    def close(self) -> None:
        """Stop everything and remove the session's files; safe to call twice."""
        if self._closed:
            return
        self._closing.set()
        with self._lock:
            self._closed = True
            procs = list(self.procs.values())
        try:
            trees = [(running, _tree(running)) for running in procs]
            segments = shm.mapped_segments(pid for _, pids in trees for pid in pids)
            for running, pids in trees:
                _signal_tree(running, signal.SIGKILL, pids)
            for running, pids in trees:
                _reap(running, pids, timeout=3.0)
            shm.unlink(segments)
        finally:
            portguard.release(self.api_guard)
            self.mounts.close()
            if self._ports:
                self._ports.release()
            if self.session:
                self.session.close()
            _LIVE.discard(self)

    # --- added for harness.faults (database loss) ------------------------------------------
    def reinit_data(self, name: str) -> None:
        """Give a component whose disk was lost a fresh data directory (cached template)."""

        comp = self.topology.component(name)
        dest = data_dir_of(self.run_dir, name)
        shutil.rmtree(dest, ignore_errors=True)
        init = list(comp.data_dir.init) if comp.data_dir else []
        datadirs.prepare(
            name,
            init,
            lambda data: [render(t, self.ctx, name, data_dir=data) for t in init],
            dest,
            self.templates,
            self._owner(comp),
            self._env(name, {}),
        )

    def redirect(self, name: str, to: str) -> None:
        """After a failover: ``endpoints.components[name]`` reaches ``to``'s process."""
        self.endpoints = self.endpoints.redirected(name, to)


def _tree(running: _Running) -> list[int]:
    """The component's leader and every descendant."""
    return tree(running.popen.pid)


def _signal_tree(running: _Running, sig: int, pids: list[int] | None = None) -> list[int]:
    """Send ``sig`` to the leader's group and every descendant (``pids`` when the caller
    has walked the tree already); return the pids signalled."""
    pids = _tree(running) if pids is None else pids
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(running.pgid, sig)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    return pids


def _reap(running: _Running, pids: list[int], timeout: float) -> None:
    """Wait for the leader, then for each other process of the component to be gone.

    As child subreaper the harness inherits the orphans of a killed leader and reaps
    them itself, so nothing lingers as a zombie under PID 1.
    """
    with contextlib.suppress(subprocess.TimeoutExpired):
        running.popen.wait(timeout)
    pending = set(pids) - {running.popen.pid}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-running.pgid, os.WNOHANG)[0] > 0:
                pass
        for pid in list(pending):
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    pending.discard(pid)
            except ChildProcessError:  # not (yet) our child: gone, or still being reparented
                if not os.path.exists(f"/proc/{pid}"):
                    pending.discard(pid)
        if not pending:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(running.pgid, 0)
                time.sleep(0.002)
                continue
            return
        time.sleep(0.002)
