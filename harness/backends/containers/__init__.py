"""The containers backend: a topology as Docker containers, started with testcontainers.

Each run gets its own Docker network, ``harness-<session>``. Every component is a
container from the image its topology names (``image:``; the project's images are built
and cached by :mod:`harness.images.build`), in the network namespace of a small holder
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

The package, one concept per module: `system` (the backend and the running system with
its abilities), `layout` (ports inside and published, endpoints, the address table),
`inside` (a component's command, environment and files as seen in its container),
`readiness` (waiting for a probe), `proxy` (the Toxiproxy client in host addresses) and
`housekeeping` (labels, whether an engine answers, reaping what crashed runs left).
"""

from __future__ import annotations

import os

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # before testcontainers reads it

from harness.backends.containers.housekeeping import (
    COMPONENT_LABEL,
    SESSION_DIR_LABEL,
    SESSION_LABEL,
    engine_available,
    reap_containers,
)
from harness.backends.containers.inside import PRELUDE, PRELUDE_SCRIPT
from harness.backends.containers.layout import HOST
from harness.backends.containers.proxy import NetworkToxiproxy
from harness.backends.containers.readiness import ProbeWait
from harness.backends.containers.system import ContainersBackend, ContainersSystem

_PRELUDE_SCRIPT = PRELUDE_SCRIPT  # the name this module had before it became a package

__all__ = [
    "COMPONENT_LABEL",
    "HOST",
    "PRELUDE",
    "PRELUDE_SCRIPT",
    "SESSION_DIR_LABEL",
    "SESSION_LABEL",
    "ContainersBackend",
    "ContainersSystem",
    "NetworkToxiproxy",
    "ProbeWait",
    "engine_available",
    "reap_containers",
]
