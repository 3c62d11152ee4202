"""The environment every backend starts Toxiproxy with."""

from __future__ import annotations

import pytest

from harness.toxiproxy import server_env


def test_toxiproxy_runs_on_one_scheduler_thread_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HARNESS_TOXIPROXY_GOMAXPROCS", raising=False)
    monkeypatch.setenv("GOMAXPROCS", "8")  # the user's Go setting is not Toxiproxy's
    assert server_env() == {"LOG_LEVEL": "warn", "GOMAXPROCS": "1"}


def test_the_harness_variable_overrides_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_TOXIPROXY_GOMAXPROCS", "2")
    assert server_env()["GOMAXPROCS"] == "2"
