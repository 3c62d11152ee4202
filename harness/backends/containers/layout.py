"""Where everything of a run on the containers backend listens: each component's port
inside its container and the loopback port published for it on the host, each link's
proxy port inside the Toxiproxy container and on the host, the Toxiproxy API, the
:class:`~harness.backends.Endpoints` built from them (host addresses only), and the table
from host addresses to network ones that the Toxiproxy client translates with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from testcontainers.core.container import DockerContainer

from harness.backends import ComponentEndpoint, Endpoints, LinkEndpoint
from harness.ports import PortAllocator
from harness.topology import Topology

__all__ = [
    "HOST",
    "INSIDE_PORTS",
    "LINK_PORT_BASE",
    "TOXIPROXY_API",
    "TOXIPROXY_IMAGE",
    "TOXIPROXY_NAME",
    "Layout",
    "publish_port",
]

HOST = "127.0.0.1"
TOXIPROXY_NAME = "toxiproxy"
TOXIPROXY_IMAGE = "harness-toxiproxy"
TOXIPROXY_API = 8474
LINK_PORT_BASE = 20000
INSIDE_PORTS = {"postgres": 5432, "redis": 6379}  # by probe kind; others listen on 8000


@dataclass(frozen=True)
class Layout:
    """The ports of one run: inside the containers, and published on ``HOST``."""

    inside: Mapping[str, int]  # component -> its port inside its container
    published: Mapping[str, int]  # component -> its port on the host
    link_inside: Mapping[str, int]  # link -> its proxy's port inside the Toxiproxy container
    link_published: Mapping[str, int]  # link -> that proxy's port on the host
    api_port: int  # the Toxiproxy API on the host

    @classmethod
    def allocate(cls, topology: Topology, ports: PortAllocator) -> Layout:
        """Inside ports by convention, host ports from ``ports`` (free, held for the run)."""
        return cls(
            inside={c.name: INSIDE_PORTS.get(c.probe.kind, 8000) for c in topology.components},
            published={c.name: ports.allocate() for c in topology.components},
            link_inside={link.name: LINK_PORT_BASE + i for i, link in enumerate(topology.links)},
            link_published={link.name: ports.allocate() for link in topology.links},
            api_port=ports.allocate(),
        )

    def endpoints(
        self, topology: Topology, passwords: Mapping[str, str] | None = None
    ) -> Endpoints:
        """Every address of the run, as the host reaches it (with each component's
        rendered `password:`)."""
        passwords = passwords or {}
        return Endpoints(
            gateways=tuple(
                f"http://{HOST}:{self.link_published['client->' + c.name]}"
                for c in topology.entrypoints
            ),
            toxiproxy=f"http://{HOST}:{self.api_port}",
            components={
                c.name: ComponentEndpoint(
                    c.name,
                    c.group,
                    HOST,
                    self.published[c.name],
                    c.probe.kind,
                    passwords.get(c.name),
                )
                for c in topology.components
            },
            links={
                link.name: LinkEndpoint(
                    link.name,
                    link.source,
                    link.target,
                    f"{HOST}:{self.link_published[link.name]}",
                    f"{HOST}:{self.published[link.target]}",
                )
                for link in topology.links
            },
        )

    def to_network(self, topology: Topology) -> dict[str, str]:
        """Host address -> the address on the run's network (components and link proxies)."""
        table = {
            f"{HOST}:{self.published[c.name]}": f"{c.name}:{self.inside[c.name]}"
            for c in topology.components
        }
        table.update(
            {
                f"{HOST}:{self.link_published[name]}": f"0.0.0.0:{inside}"
                for name, inside in self.link_inside.items()
            }
        )
        return table


def publish_port(container: DockerContainer, inside: int, port: int) -> None:
    """Publish the container's tcp port ``inside`` as ``HOST:port`` (loopback only)."""
    container.ports[f"{inside}/tcp"] = (HOST, port)  # type: ignore[assignment]  # docker-py takes (address, port); testcontainers types a port
