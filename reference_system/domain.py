"""The reference system's domain for the harness (`harness.domain`): the one module here
that imports the harness, an adapter the topology names; the system itself never does.

Everything else the harness needs is data in `topology.yaml` and `operations.yaml`.
This adds what data cannot say: which settings overrides are valid (checked when an
experiment is loaded, not when a worker fails to start), and the single-mechanism
switches, each turning one resilience mechanism of the hardened profile off.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from harness.domain import DataDomain, Problem, Switch
from reference_system.settings import (
    SettingsError,
    known_keys,
    parse_overrides,
    profile_defaults,
)

_OFF: dict[str, Any] = {  # the mechanisms whose hardened value has an "off"
    "deadline_ms": 0,
    "upstream_keepalive": 0,
    "upstream_max_conns": 0,
}


class ReferenceDomain(DataDomain):
    """`DataDomain` plus the reference system's settings and switches."""

    def check_params(self, params: Mapping[str, Any]) -> tuple[Problem, ...]:
        overrides = params.get("overrides") or {}
        if not isinstance(overrides, Mapping):
            return (Problem("overrides", overrides, "a mapping of setting -> value"),)
        problems = []
        for key, value in overrides.items():
            if key not in known_keys():
                problems.append(Problem(f"overrides.{key}", key, f"one of {known_keys()}"))
                continue
            try:
                parse_overrides(json.dumps({key: value}))
            except SettingsError as exc:
                problems.append(Problem(f"overrides.{key}", value, str(exc).split("; ")[-1]))
        return tuple(problems)

    def switches(self, params: Mapping[str, Any]) -> tuple[Switch, ...]:
        profile = str(params.get("profile", "hardened"))
        hardened = profile_defaults(profile)
        naive = profile_defaults("naive")
        base = dict(params.get("overrides") or {})
        out = []
        for key in known_keys():
            on, off = getattr(hardened, key), getattr(naive, key)
            if isinstance(on, bool) and on and (not off or key == "spool_fsync"):
                out.append(Switch(key, {"overrides": {**base, key: False}}, f"{key}: false"))
            elif key in _OFF and on != _OFF[key]:
                out.append(
                    Switch(key, {"overrides": {**base, key: _OFF[key]}}, f"{key}: {_OFF[key]}")
                )
        if int(params.get("pg_replicas", 0)) > 0:
            out.append(
                Switch("pg_replica", {"pg_replicas": 0, "pg_sync_standbys": ""}, "no standby")
            )
        if int(params.get("gateways", 1)) > 1:
            out.append(Switch("second_gateway", {"gateways": 1}, "one gateway"))
        return tuple(out)
