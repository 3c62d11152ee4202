"""Toxiproxy on the containers backend: its container (one proxy per link, listening
inside it, the API and every proxy published on the host) and its API spoken in host
addresses (:class:`NetworkToxiproxy`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network
from testcontainers.core.waiting_utils import WaitStrategy

from harness.backends.containers.housekeeping import COMPONENT_LABEL, SESSION_LABEL
from harness.backends.containers.layout import TOXIPROXY_API, TOXIPROXY_NAME, Layout, publish_port
from harness.sessions import LABEL
from harness.topology import Topology
from harness.toxiproxy import SERVER_FLAGS, ToxiproxyClient, server_env

__all__ = ["NetworkToxiproxy", "toxiproxy_container"]


def toxiproxy_container(
    image: str,
    name: str,
    network: Network,
    topology: Topology,
    layout: Layout,
    labels: Mapping[str, str],
    wait: WaitStrategy,
) -> DockerContainer:
    """The run's Toxiproxy container (not started): a proxy per link of ``topology`` on its
    inside port, forwarding to the target's name and inside port, reachable on the network
    as ``toxiproxy``; ``labels`` are the run's, ``wait`` says when it is ready."""
    config = [
        {
            "name": link.name,
            "listen": f"0.0.0.0:{layout.link_inside[link.name]}",
            "upstream": f"{link.target}:{layout.inside[link.target]}",
            "enabled": True,
        }
        for link in topology.links
    ]
    script = (
        'printf "%s" "$TOXIPROXY_CONFIG" > /tmp/proxies.json && exec toxiproxy-server'
        f" -host 0.0.0.0 -port {TOXIPROXY_API} -config /tmp/proxies.json " + " ".join(SERVER_FLAGS)
    )
    container = (
        DockerContainer(image)
        .with_name(name)
        .with_network(network)
        .with_network_aliases(TOXIPROXY_NAME)
        .with_command(["sh", "-c", script])
        .with_envs(
            TOXIPROXY_CONFIG=json.dumps(config),
            **server_env(),
            **{LABEL: labels[SESSION_LABEL]},
        )
        .with_kwargs(labels={**labels, COMPONENT_LABEL: TOXIPROXY_NAME}, init=True)
        .waiting_for(wait)
    )
    publish_port(container, TOXIPROXY_API, layout.api_port)
    for link, inside in layout.link_inside.items():
        publish_port(container, inside, layout.link_published[link])
    return container


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
