"""Ports only the harness's own user may connect to: a local firewall rule (nftables,
matching the connecting socket's owner) in front of a listener that has no
authentication of its own, such as Toxiproxy's API, where any local user could otherwise
add toxics or point a link at a server of their own.

Each session gets one nftables table, named after it (`harness_<session id>`), with
two rules per guarded port (IPv4 and IPv6 loopback); `release` removes it, and the
reaper removes the tables of sessions that ended without it (a SIGKILLed run:
`drop_stale`), so a later run that gets the same port number is not guarded by mistake.
Without root or without `nft` nothing is guarded, and `guard` says why.

    guarded = guard(session.id, [api_port])
    if isinstance(guarded, str): ...   # the reason the port stays open
    release(guarded)
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from harness.errors import PrerequisiteError
from harness.tools import find_binary

__all__ = ["PortGuard", "drop_stale", "guard", "release", "table_name"]

PREFIX = "harness_"
_TIMEOUT = 5.0


@dataclass(frozen=True)
class PortGuard:
    """An installed guard: its table, the ports it covers and the one user let through."""

    table: str
    ports: tuple[int, ...]
    uid: int


def table_name(session_id: str) -> str:
    """The table of a session: `20261207-205443-4242-a1b2c3` gives
    `harness_20261207_205443_4242_a1b2c3` (a session id has no underscore)."""
    return PREFIX + session_id.replace("-", "_")


def _nft() -> str | None:
    try:
        return find_binary("nft")
    except PrerequisiteError:
        return None


def _run(nft: str, args: list[str], script: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [nft, *args], input=script, capture_output=True, text=True, timeout=_TIMEOUT
    )


def guard(session_id: str, ports: Iterable[int], uid: int | None = None) -> PortGuard | str:
    """Let only `uid` (default: this process's) connect to `ports` on the loopback; the
    guard, or why there is none (not root, no nft, nft refused)."""
    uid = os.geteuid() if uid is None else uid
    ports = tuple(sorted(set(ports)))
    if os.geteuid() != 0:
        return "the harness does not run as root (nftables needs it)"
    nft = _nft()
    if nft is None:
        return "nft is not installed (Debian package nftables)"
    table = table_name(session_id)
    rules = "\n".join(
        f"    ip daddr 127.0.0.0/8 tcp dport {port} meta skuid != {uid} reject with tcp reset\n"
        f"    ip6 daddr ::1 tcp dport {port} meta skuid != {uid} reject with tcp reset"
        for port in ports
    )
    script = (
        f"table inet {table} {{\n"
        "  chain out {\n"
        "    type filter hook output priority 0; policy accept;\n"
        f"{rules}\n"
        "  }\n"
        "}\n"
    )
    try:
        done = _run(nft, ["-f", "-"], script)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nft failed: {exc}"
    if done.returncode != 0:
        return f"nft refused the rule: {done.stderr.strip()[:200]}"
    return PortGuard(table, ports, uid)


def _delete(nft: str, table: str) -> None:
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        _run(nft, ["delete", "table", "inet", table])


def release(guarded: PortGuard | str | None) -> None:
    """Remove a guard's table (nothing for a guard that was never installed)."""
    nft = _nft()
    if isinstance(guarded, PortGuard) and nft is not None:
        _delete(nft, guarded.table)


def _tables(nft: str) -> list[str]:
    try:
        listed = _run(nft, ["list", "tables", "inet"])
    except (OSError, subprocess.TimeoutExpired):
        return []
    names = (line.split()[-1] for line in listed.stdout.splitlines() if line.strip())
    return [name for name in names if name.startswith(PREFIX)]


def drop_stale(alive: Callable[[str], bool]) -> list[str]:
    """Remove every harness table whose session `alive` (given the session id) says has
    ended, e.g. one of another base whose run was SIGKILLed; their names."""
    nft = _nft()
    if nft is None or os.geteuid() != 0:
        return []
    dropped = []
    for table in _tables(nft):
        if not alive(table.removeprefix(PREFIX).replace("_", "-")):
            _delete(nft, table)
            dropped.append(table)
    return dropped
