"""The Docker engine around the runs of the containers backend: the labels every container,
network and volume of a run carries, whether an engine answers, and removing what runs
whose session is gone (crashed) left behind. Ryuk is not used (its image cannot be pulled
everywhere): a run removes what it started, and each start reaps the rest.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer

from harness.errors import HarnessError
from harness.images import build as images
from harness.sessions import is_alive

testcontainers_config.ryuk_disabled = True

__all__ = [
    "COMPONENT_LABEL",
    "SESSION_DIR_LABEL",
    "SESSION_LABEL",
    "engine_available",
    "reap_containers",
    "remove_container",
]

SESSION_LABEL = "harness.session"
SESSION_DIR_LABEL = "harness.session.dir"
COMPONENT_LABEL = "harness.component"


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


def remove_container(container: DockerContainer) -> None:
    """Stop and remove ``container`` and its anonymous volumes; quiet when it is gone."""
    with contextlib.suppress(Exception):
        container.stop(force=True, delete_volume=True)
