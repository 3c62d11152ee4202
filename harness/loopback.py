"""The loopback guard: traffic the harness aims goes only to this machine.

Checked when a file is loaded, before anything starts. In an experiment file every value
is checked; in a topology file every value except the commands it runs (`command`,
`seed`, `reset`, `data_dir.init`: the user's own programs, run as written). A value is
refused when it is

- a URL (`scheme://host...`) whose host is not loopback,
- under a host-like key (`host`, `url`, `address`, `endpoint`, ...) and not loopback,
- or, under any key, a bare IP address or `IP:port` that is not loopback.

Loopback is 127.0.0.0/8, ::1, `localhost` and `*.localhost`. A caller (a CLI flag, never
the file itself) may allow more hosts. Aliases are walked once, so a small file with a
huge alias tree costs nothing here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from harness.validate import Node

__all__ = ["EXPERIMENT_SKIP", "TOPOLOGY_SKIP", "check_loopback", "is_loopback"]

HOST_KEYS = frozenset({"host", "hosts", "url", "urls", "address", "endpoint", "endpoints"})
EXPERIMENT_SKIP: tuple[str, ...] = ()
TOPOLOGY_SKIP = (
    r"^components\.[^.]+\.command(\[\d+\])?$",
    r"^components\.[^.]+\.data_dir\.init(\[\d+\])?$",
    r"^(seed|reset)(\[\d+\])?$",
)
_HOST_PORT = re.compile(r"^\[?([0-9A-Fa-f:.]+)\]?(?::\d+)?$")
_SEPARATOR = re.compile(r"://")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
_REST = re.compile(r"[^\s\"',]+")
_LONGEST_ADDRESS = 64  # "[ffff:...:ffff]:65535" and the like; anything longer is no bare IP


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_host(text: str) -> str:
    try:
        return urlsplit(text).hostname or ""
    except ValueError:
        return ""


def _host_of(text: str) -> str:
    if text.startswith("[") and "]" in text:  # [::1]:8080
        return text[1 : text.index("]")]
    if text.count(":") == 1:  # host:port
        return text.split(":")[0]
    return text


def _bare_ip(text: str) -> str | None:
    """The IP address a bare `IP`, `IP:port` or `[IPv6]:port` names, or None."""
    text = text.strip()
    if len(text) > _LONGEST_ADDRESS or not _HOST_PORT.match(text):
        return None
    port = ""
    if text.startswith("["):
        if "]" not in text:
            return None
        host, port = text[1 : text.index("]")], text[text.index("]") + 1 :]
        if port and not (port.startswith(":") and port[1:].isdigit()):
            return None
    elif text.count(":") == 1:
        host, port = text.split(":")
        if not port.isdigit():
            return None
    else:
        host = text
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host


def _urls(value: str) -> Iterator[str]:
    """Every `scheme://rest` in `value`, found in linear time (a regex with the scheme's
    repetition first backtracks quadratically over a long run of letters)."""
    for m in _SEPARATOR.finditer(value):
        start = m.start()
        while start > 0 and value[start - 1] in _SCHEME_CHARS and m.start() - start < 32:
            start -= 1
        rest = _REST.match(value, m.end())
        yield value[start : rest.end() if rest else m.end()]


def _refused(value: str, key: str | None) -> str | None:
    """The non-loopback host `value` aims at, or None."""
    for url in _urls(value):
        host = _url_host(url)
        if host and not is_loopback(host):
            return host
    if key in HOST_KEYS and "://" not in value:
        host = _host_of(value)
        if host and not is_loopback(host):
            return host
    ip = _bare_ip(value)
    if ip is not None and not is_loopback(ip):
        return ip
    return None


def check_loopback(
    node: Node, allowed: Iterable[str] = (), skip: Iterable[str] = EXPERIMENT_SKIP
) -> None:
    """Refuse any value of `node` that aims traffic off this machine (module docstring)."""
    allow = frozenset(allowed)
    patterns = [re.compile(p) for p in skip]
    seen: set[int] = set()

    def walk(value: Any, path: str, key: str | None) -> None:
        if any(p.match(path) for p in patterns):
            return
        if isinstance(value, dict | list):
            if id(value) in seen:
                return
            seen.add(id(value))
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(v, f"{path}.{k}" if path else str(k), str(k))
            else:
                for i, v in enumerate(value):
                    walk(v, f"{path}[{i}]", key)
        elif isinstance(value, str):
            host = _refused(value, key)
            if host is not None and host not in allow:
                raise Node(value, node.source, path).fail(
                    "a loopback target (127.0.0.0/8, ::1 or localhost)",
                    "the harness only sends traffic to this machine",
                )

    walk(node.value, node.path, None)
