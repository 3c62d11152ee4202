"""Settings: the two profiles and the single-mechanism overrides that switch one knob.

Every resilience mechanism is one named field. ``naive`` switches them all off (what the
article suggests Xi'an ran); ``hardened`` switches them all on. An experiment passes a JSON
object in ``REFSYS_OVERRIDES`` (e.g. ``{"cache": false}``) to change single fields::

    settings = load("hardened", '{"db_timeouts": false}')

Unknown keys and wrong types raise :class:`SettingsError` naming the key, the value and
what was expected.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

PROFILES = ("naive", "hardened")
OVERRIDES_ENV = "REFSYS_OVERRIDES"


class SettingsError(ValueError):
    """A profile name or an override is invalid; the message says which and why."""


@dataclass(frozen=True)
class Settings:
    """Every knob of the reference system. Times are integer milliseconds or seconds."""

    profile: str
    # -- admission control and load shedding (hypothesis 2)
    admission: bool
    max_inflight: int
    max_queue: int
    queue_timeout_ms: int
    deadline_ms: int  # request budget; 0 = none. Work past it is dropped.
    # -- timeouts on every PostgreSQL / Redis call (hypothesis 5)
    db_timeouts: bool
    db_timeout_ms: int
    db_connect_timeout_ms: int
    redis_timeouts: bool
    redis_timeout_ms: int
    db_pool_size: int
    # -- circuit breaker around the database (hypothesis 5)
    breaker: bool
    breaker_failures: int
    breaker_reset_ms: int
    # -- show-code read path (hypotheses 1, 2, 5)
    single_query: bool  # one denormalised query instead of several per show-code
    cache: bool
    cache_fresh_s: int
    stale_on_error: bool
    cache_stale_s: int  # bounded staleness: older entries are never served
    read_model: bool  # Redis holds every person's colour (complete, kept current by ingest)
    # -- scan write path (hypothesis 5)
    spool: bool
    spool_fsync: bool
    scan_check: bool  # with the spool: a new scan_id is looked up in the DB (409 on conflict)
    scan_check_timeout_ms: int  # that lookup's bound; past it (or DB down) the scan is accepted
    # -- edge: nginx (hypotheses 3, 4)
    rate_limit: bool
    rate_limit_rps: int
    rate_limit_burst: int
    rate_limit_gate_rps: int  # per scanning device (a venue's gate), on POST /v1/scans
    upstream_retry: bool  # proxy_next_upstream
    retry_refusal: bool  # a worker's 503 (busy, or its deps down) is tried once on another
    upstream_timeouts: bool
    upstream_connect_timeout_ms: int
    upstream_read_timeout_ms: int
    upstream_keepalive: int  # idle keep-alive connections per upstream group; 0 = off
    upstream_health: bool  # passive health checks: max_fails / fail_timeout
    upstream_max_fails: int
    upstream_max_conns: int  # connections per app worker; beyond: fast 503 at the edge. 0 = off
    upstream_fail_timeout_s: int
    gateway_worker_connections: int
    # -- input limits (both profiles; not a resilience mechanism)
    max_batch: int
    max_body_bytes: int
    token_ttl_s: int


_COMMON: dict[str, Any] = {
    "max_inflight": 16,
    "max_queue": 64,
    "queue_timeout_ms": 30,
    "db_timeout_ms": 400,
    "db_connect_timeout_ms": 500,
    "redis_timeout_ms": 50,
    "breaker_failures": 5,
    "breaker_reset_ms": 2000,
    "cache_fresh_s": 30,
    "cache_stale_s": 300,
    "rate_limit_rps": 20,
    "rate_limit_burst": 40,
    "rate_limit_gate_rps": 200,
    "upstream_connect_timeout_ms": 200,
    "upstream_read_timeout_ms": 1000,
    "upstream_max_fails": 3,
    "upstream_fail_timeout_s": 2,
    "max_batch": 1000,
    "max_body_bytes": 1 << 20,
    "token_ttl_s": 600,
    "scan_check_timeout_ms": 100,
}

_PROFILE_VALUES: dict[str, dict[str, Any]] = {
    "naive": {
        "admission": False,
        "deadline_ms": 0,
        "db_timeouts": False,
        "redis_timeouts": False,
        "db_pool_size": 10,
        "breaker": False,
        "single_query": False,
        "cache": False,
        "read_model": False,
        "stale_on_error": False,
        "spool": False,
        "spool_fsync": True,
        "scan_check": False,
        "rate_limit": False,
        "upstream_retry": False,
        "retry_refusal": False,
        "upstream_timeouts": False,
        "upstream_keepalive": 0,
        "upstream_health": False,
        # Xi'an-style "never refuse a user": the gateway takes every connection, so the
        # queue in front of the app workers is bounded by nothing but patience
        "gateway_worker_connections": 16384,
        "upstream_max_conns": 0,
    },
    "hardened": {
        "admission": True,
        "deadline_ms": 800,
        "db_timeouts": True,
        "redis_timeouts": True,
        "db_pool_size": 8,
        "breaker": True,
        "single_query": True,
        "cache": True,
        "read_model": True,
        "stale_on_error": True,
        "spool": True,
        "spool_fsync": True,
        "scan_check": True,
        "rate_limit": True,
        "upstream_retry": True,
        "retry_refusal": True,
        "upstream_timeouts": True,
        "upstream_keepalive": 64,
        "upstream_health": True,
        "gateway_worker_connections": 4096,
        "upstream_max_conns": 16,
    },
}

_MIN_VALUE: dict[str, int] = {
    "max_inflight": 1,
    "db_pool_size": 1,
    "breaker_failures": 1,
    "rate_limit_rps": 1,
    "rate_limit_gate_rps": 1,
    "upstream_max_fails": 1,
    "upstream_fail_timeout_s": 1,
    "gateway_worker_connections": 16,
    "max_batch": 1,
    "max_body_bytes": 1024,
    "token_ttl_s": 1,
    "db_timeout_ms": 1,
    "db_connect_timeout_ms": 1,
    "redis_timeout_ms": 1,
    "scan_check_timeout_ms": 1,
    "upstream_connect_timeout_ms": 1,
    "upstream_read_timeout_ms": 1,
}

_MAX_VALUE: dict[str, int] = {
    "token_ttl_s": 30 * 86400,  # a code's token is minutes old, never weeks
}

_FIELD_TYPES: dict[str, type] = {
    f.name: (bool if f.type in ("bool", bool) else int)
    for f in dataclasses.fields(Settings)
    if f.name != "profile"
}


def profile_defaults(profile: str) -> Settings:
    """The settings of a named profile, with no overrides."""
    if profile not in _PROFILE_VALUES:
        raise SettingsError(
            f"profile: unknown profile {profile!r}; expected one of {', '.join(PROFILES)}"
        )
    return Settings(profile=profile, **_COMMON, **_PROFILE_VALUES[profile])


def parse_overrides(text: str | None) -> dict[str, bool | int]:
    """Parse and type-check a ``REFSYS_OVERRIDES`` JSON object (empty/None means none)."""
    if text is None or not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f"{OVERRIDES_ENV}: not valid JSON ({exc.msg} at char {exc.pos}); "
            f'expected an object such as {{"cache": false}}'
        ) from None
    if not isinstance(raw, dict):
        raise SettingsError(
            f"{OVERRIDES_ENV}: expected a JSON object, got {type(raw).__name__} {raw!r}"
        )
    out: dict[str, bool | int] = {}
    for key, value in raw.items():
        expected = _FIELD_TYPES.get(key)
        if expected is None:
            raise SettingsError(
                f"{OVERRIDES_ENV}: unknown key {key!r} (value {value!r}); "
                f"expected one of: {', '.join(sorted(_FIELD_TYPES))}"
            )
        if expected is bool:
            if not isinstance(value, bool):
                raise SettingsError(
                    f"{OVERRIDES_ENV}: {key}={value!r} ({type(value).__name__}); "
                    f"expected a boolean (true/false)"
                )
        else:
            if isinstance(value, bool) or not isinstance(value, int):
                raise SettingsError(
                    f"{OVERRIDES_ENV}: {key}={value!r} ({type(value).__name__}); "
                    f"expected an integer"
                )
            lowest = _MIN_VALUE.get(key, 0)
            if value < lowest:
                raise SettingsError(
                    f"{OVERRIDES_ENV}: {key}={value!r}; expected an integer >= {lowest}"
                )
            highest = _MAX_VALUE.get(key)
            if highest is not None and value > highest:
                raise SettingsError(
                    f"{OVERRIDES_ENV}: {key}={value!r}; expected an integer <= {highest}"
                )
        out[key] = value
    return out


def load(profile: str, overrides: str | None = None) -> Settings:
    """The settings for ``profile`` with the JSON ``overrides`` applied."""
    changes: dict[str, Any] = parse_overrides(overrides)
    return dataclasses.replace(profile_defaults(profile), **changes)


def known_keys() -> list[str]:
    """Every override key, sorted."""
    return sorted(_FIELD_TYPES)
