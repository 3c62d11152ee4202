"""Settings: profiles, overrides and the errors that name the bad key."""

from __future__ import annotations

import dataclasses

import pytest

from reference_system import app, gateway
from reference_system.settings import (
    SettingsError,
    known_keys,
    load,
    parse_overrides,
    profile_defaults,
)

MECHANISMS = [
    "admission",
    "db_timeouts",
    "redis_timeouts",
    "breaker",
    "single_query",
    "cache",
    "stale_on_error",
    "spool",
    "scan_check",
    "rate_limit",
    "upstream_retry",
    "retry_refusal",
    "upstream_timeouts",
    "upstream_health",
]


@pytest.mark.parametrize("name", MECHANISMS)
def test_naive_has_every_mechanism_off_and_hardened_on(name: str) -> None:
    assert getattr(profile_defaults("naive"), name) is False
    assert getattr(profile_defaults("hardened"), name) is True


def test_naive_has_no_deadline_no_keepalive() -> None:
    naive = profile_defaults("naive")
    assert naive.deadline_ms == 0
    assert naive.upstream_keepalive == 0
    assert profile_defaults("hardened").upstream_keepalive > 0


def test_single_override_changes_only_that_field() -> None:
    base = profile_defaults("hardened")
    changed = load("hardened", '{"db_timeouts": false}')
    assert changed.db_timeouts is False
    assert dataclasses.replace(changed, db_timeouts=True) == base


@pytest.mark.parametrize("text", [None, "", "  ", "{}"])
def test_empty_overrides(text: str | None) -> None:
    assert parse_overrides(text) == {}


def test_unknown_key_is_named_with_value_and_choices() -> None:
    with pytest.raises(SettingsError) as err:
        load("hardened", '{"cahce": false}')
    msg = str(err.value)
    assert "'cahce'" in msg and "False" in msg and "cache" in msg


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"cache": 1}', "expected a boolean"),
        ('{"cache": "false"}', "expected a boolean"),
        ('{"max_inflight": true}', "expected an integer"),
        ('{"max_inflight": 1.5}', "expected an integer"),
        ('{"max_inflight": 0}', "expected an integer >= 1"),
        ('{"deadline_ms": -1}', "expected an integer >= 0"),
        ("[1]", "expected a JSON object"),
        ("{cache: false}", "not valid JSON"),
    ],
)
def test_wrong_types_are_rejected(text: str, expected: str) -> None:
    with pytest.raises(SettingsError, match=expected):
        parse_overrides(text)


def test_unknown_profile() -> None:
    with pytest.raises(SettingsError, match="naive, hardened"):
        profile_defaults("paranoid")


def test_every_field_is_overridable() -> None:
    fields = {f.name for f in dataclasses.fields(profile_defaults("naive"))} - {"profile"}
    assert set(known_keys()) == fields


@pytest.mark.parametrize("entry", [app.main, gateway.main])
def test_commands_exit_2_on_bad_override(
    entry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REFSYS_OVERRIDES", '{"db_timeouts": "no"}')
    argv = (
        ["--port", "1", "--postgres", "h:1", "--redis", "h:2", "--profile", "naive"]
        if entry is app.main
        else ["--port", "1", "--dir", "/nonexistent", "--upstreams", "h:1", "--profile", "naive"]
    )
    assert entry(argv) == 2
    err = capsys.readouterr().err
    assert "db_timeouts" in err and "'no'" in err and "boolean" in err
