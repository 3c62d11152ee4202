"""A small client for one Toxiproxy server's HTTP API.

Why not only ``toxiproxy-python``: it keeps the server's host and port as class
attributes (one server per process, while each harness session runs its own), has no
``/populate`` and no request timeouts. This client is per-instance, uses the standard
library, and turns Toxiproxy's ``{"error": ..., "status": N}`` answers into
:class:`ToxiproxyError` with the method and path that failed.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError

SERVER_FLAGS = ("-proxy-metrics",)
"""Flags every backend starts Toxiproxy with: per-proxy byte counters at ``GET /metrics``
(read by `harness.metrics` when a topology asks for them)."""


def server_env() -> dict[str, str]:
    """The environment a Toxiproxy server is started with, by every backend.

    ``GOMAXPROCS=1`` (``HARNESS_TOXIPROXY_GOMAXPROCS`` overrides it): on two cores shared
    with the system under test, Go's scheduler handing each chunk between the goroutines
    of a link across threads costs more than it gains. Measured here with
    ``bench/bench_faults.py``: added round trip per hop +25.5 us instead of +41.9 us,
    0.45x instead of 0.35x of a direct connection's requests/s; during the xian-story
    surge Toxiproxy used 23-34% of a core instead of 30-43%. Fault actuation and latency
    accuracy stay the same (median 1.4 ms; +0.4 to +4.5 ms on 50-1000 ms).
    """
    return {
        "LOG_LEVEL": "warn",
        "GOMAXPROCS": os.environ.get("HARNESS_TOXIPROXY_GOMAXPROCS", "1"),
    }


class ToxiproxyError(HarnessError):
    """The Toxiproxy API refused or failed a request."""


@dataclass(frozen=True)
class ProxySpec:
    """One proxy: a named listen address forwarding to an upstream."""

    name: str
    listen: str
    upstream: str
    enabled: bool = True

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
        }


class ToxiproxyClient:
    """Talks to the Toxiproxy server at ``url`` (e.g. ``http://127.0.0.1:18474``)."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "User-Agent": "harness"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise ToxiproxyError(f"{method} {path}: HTTP {exc.code}: {detail}") from None
        except OSError as exc:
            raise ToxiproxyError(f"{method} {path}: {exc}") from None
        return json.loads(raw) if raw else None

    def version(self) -> str:
        req = urllib.request.Request(self.url + "/version", headers={"User-Agent": "harness"})
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            return resp.read().decode().strip()

    def populate(self, proxies: Iterable[ProxySpec]) -> None:
        self.request("POST", "/populate", [p.as_json() for p in proxies])

    def proxies(self) -> dict[str, Any]:
        return self.request("GET", "/proxies")

    def proxy(self, name: str) -> dict[str, Any]:
        return self.request("GET", f"/proxies/{name}")

    def set_enabled(self, name: str, enabled: bool) -> None:
        self.request("POST", f"/proxies/{name}", {"enabled": enabled})

    def add_toxic(
        self,
        proxy: str,
        name: str,
        type: str,
        attributes: dict[str, Any],
        stream: str = "downstream",
        toxicity: float = 1.0,
    ) -> dict[str, Any]:
        body = {
            "name": name,
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes,
        }
        return self.request("POST", f"/proxies/{proxy}/toxics", body)

    def remove_toxic(self, proxy: str, name: str) -> None:
        self.request("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/proxies/{proxy}/toxics")

    def reset(self) -> None:
        """Re-enable every proxy and remove every toxic."""
        self.request("POST", "/reset")

    def set_upstream(self, name: str, upstream: str) -> None:
        """Point the proxy at another upstream (same listen address; connections restart)."""
        self.request("POST", f"/proxies/{name}", {"upstream": upstream})
