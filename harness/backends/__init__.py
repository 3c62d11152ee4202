"""Backends realise a topology: ``local`` (processes on loopback, the default) and
``containers`` (Docker, through testcontainers). What a running system can do beyond
serving traffic is split into small optional abilities, so a fault asks
``isinstance(system, Pausable)`` instead of assuming.
"""

from __future__ import annotations

import dataclasses
import signal
import urllib.parse
from collections.abc import Collection, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from harness.topology import Topology
from harness.toxiproxy import ToxiproxyClient


@dataclass(frozen=True)
class ComponentEndpoint:
    """Where one component listens (directly, not through Toxiproxy), and what it is."""

    name: str
    group: str
    host: str
    port: int
    probe: str
    # what the harness's own clients give it (the topology's `password:`); never printed
    password: str | None = field(default=None, repr=False, compare=False, metadata={"secret": True})

    @property
    def url(self) -> str:
        """Its address as a URL, for people: no password in it."""
        if self.probe == "postgres":
            return f"postgresql://postgres@{self.host}:{self.port}/postgres"
        if self.probe == "redis":
            return f"redis://{self.host}:{self.port}/0"
        return f"http://{self.host}:{self.port}"

    @property
    def dsn(self) -> str:
        """Its address for a client library: `url` with the password, when it has one."""
        if self.password is None or self.probe not in ("postgres", "redis"):
            return self.url
        secret = urllib.parse.quote(self.password, safe="")
        if self.probe == "postgres":
            return f"postgresql://postgres:{secret}@{self.host}:{self.port}/postgres"
        return f"redis://:{secret}@{self.host}:{self.port}/0"


@dataclass(frozen=True)
class LinkEndpoint:
    """One link: clients of the link connect to ``listen``, which reaches ``upstream``.
    A proxied link's ``listen`` is its Toxiproxy proxy; a direct one (no fault can act on
    it) has ``listen == upstream``, the target itself."""

    name: str
    source: str
    target: str
    listen: str
    upstream: str
    proxied: bool = True


@dataclass(frozen=True)
class Endpoints:
    """Every address of a running system, for clients, faults, checks and the journal."""

    gateways: tuple[str, ...]  # client-facing URLs (through Toxiproxy when proxied)
    toxiproxy: str
    components: Mapping[str, ComponentEndpoint]
    links: Mapping[str, LinkEndpoint]

    def first(self, probe: str) -> ComponentEndpoint | None:
        return next((c for c in self.components.values() if c.probe == probe), None)

    def redirected(self, name: str, to: str) -> Endpoints:
        """These endpoints after a failover: component `name` is reached at `to`'s address,
        with `to`'s password."""
        components = dict(self.components)
        target = components[to]
        components[name] = dataclasses.replace(
            components[name], host=target.host, port=target.port, password=target.password
        )
        return dataclasses.replace(self, components=components)

    def direct(self) -> tuple[str, ...]:
        """The links that run direct, not through Toxiproxy, sorted."""
        return tuple(sorted(name for name, link in self.links.items() if not link.proxied))


BACKENDS = ("local", "containers")


@runtime_checkable
class System(Protocol):
    """A running topology."""

    @property
    def topology(self) -> Topology: ...
    @property
    def endpoints(self) -> Endpoints: ...
    @property
    def toxiproxy(self) -> ToxiproxyClient: ...

    def seed(self, seed: int | None = None, reset: bool = False) -> None:
        """Run the topology's seed command (with ``reset``: its ``reset:`` command, when it
        has one) against the running system."""
        ...


class Backend(Protocol):
    """Starts a topology; leaving the context tears everything down. ``proxied`` names
    the links that go through Toxiproxy (None: every link); the others run direct."""

    name: str

    def start(
        self, topology: Topology, *, seed: int = 1, proxied: Collection[str] | None = None
    ) -> AbstractContextManager[System]: ...


@runtime_checkable
class Killable(Protocol):
    def kill(self, name: str, sig: int = signal.SIGKILL) -> None: ...

    def is_running(self, name: str) -> bool: ...


@runtime_checkable
class Pausable(Protocol):
    def pause(self, name: str) -> None: ...

    def resume(self, name: str) -> None: ...


@runtime_checkable
class Restartable(Protocol):
    def restart(self, name: str, timeout: float = 30.0) -> None: ...


@runtime_checkable
class DataWipeable(Protocol):
    def wipe_data(self, name: str) -> None: ...


@runtime_checkable
class LogReadable(Protocol):
    def logs(self, name: str, lines: int = 50) -> str: ...


def get_backend(name: str) -> Backend:
    """The backend called ``name`` (``local`` or ``containers``)."""
    if name == "local":
        from harness.backends.local import LocalBackend

        return LocalBackend()
    if name == "containers":
        from harness.backends.containers import ContainersBackend

        return ContainersBackend()
    raise ValueError(f"unknown backend {name!r}; expected one of ['containers', 'local']")
