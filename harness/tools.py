"""Where the harness finds the binaries it runs (PostgreSQL, Redis, nginx, Toxiproxy).

Lookup order for a name: ``HARNESS_BIN_<NAME>`` (upper case, ``-`` as ``_``), then
``PATH``, then PostgreSQL's versioned bin directory (Debian keeps ``initdb`` and
``postgres`` out of ``PATH``), then the harness's own cache, where ``./dev setup``
puts the Toxiproxy server it builds from its Go module.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
from pathlib import Path

from harness.errors import PrerequisiteError

TOXIPROXY_VERSION = "v2.12.0"
TOXIPROXY = "toxiproxy-server"

_HINTS = {
    "postgres": "apt-get install postgresql",
    "initdb": "apt-get install postgresql",
    "pg_basebackup": "apt-get install postgresql",
    "redis-server": "apt-get install redis-server",
    "nginx": "apt-get install nginx-light",
    "nft": "apt-get install nftables",
    TOXIPROXY: "./dev setup (builds it from its Go module, "
    f"github.com/Shopify/toxiproxy/v2/cmd/server@{TOXIPROXY_VERSION})",
}


def cache_dir() -> Path:
    """The harness's per-user cache (binaries, calibration), outside the project tree."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness"


def toxiproxy_cache_path() -> Path:
    return cache_dir() / "bin" / f"{TOXIPROXY}-{TOXIPROXY_VERSION}"


@functools.cache
def find_binary(name: str) -> str:
    """The absolute path of ``name``, or a PrerequisiteError that says what to install."""
    override = os.environ.get("HARNESS_BIN_" + name.upper().replace("-", "_"))
    if override:
        if not os.access(override, os.X_OK):
            raise PrerequisiteError(f"HARNESS_BIN_{name.upper()}={override} is not executable")
        return override
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found:
        return found
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_pg_version):
        return candidate
    if name == TOXIPROXY and os.access(toxiproxy_cache_path(), os.X_OK):
        return str(toxiproxy_cache_path())
    hint = _HINTS.get(name, f"install {name}")
    raise PrerequisiteError(f"{name} not found on PATH; to install it: {hint}")


def _pg_version(path: str) -> tuple[int, str]:
    version = Path(path).parent.parent.name
    return (-int(version), path) if version.isdigit() else (0, path)
