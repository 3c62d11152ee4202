"""The seed command leaves Redis alone for an app that does not use it."""

from __future__ import annotations

import pytest

from reference_system import seed as seed_module


@pytest.mark.parametrize(
    ("extra", "redis", "read_model"),
    [
        ([], "h:2", True),  # no profile named: --redis as given
        (["--profile", "hardened"], "h:2", True),
        (["--profile", "naive"], None, False),
        (["--profile", "naive", "--overrides", '{"cache": true}'], "h:2", False),
        (["--profile", "hardened", "--overrides", '{"cache": false}'], None, True),
        (["--profile", "hardened", "--overrides", '{"read_model": false}'], "h:2", False),
    ],
)
def test_redis_is_seeded_only_when_the_profile_has_a_cache(
    monkeypatch, extra, redis, read_model
) -> None:
    """A read model is loaded with everyone; a plain cache is only flushed (it starts empty)."""
    seen: list[object] = []
    report = seed_module.SeedReport(1, 1, 1, "seeded", 0.1, None, 0.0)
    monkeypatch.setattr(seed_module, "seed", lambda *args: seen.append(args[5:7]) or report)
    assert seed_module.main(["--postgres", "h:1", "--redis", "h:2", *extra]) == 0
    assert seen == [(redis, read_model)]


def test_bad_overrides_fail_with_the_key_named(capsys) -> None:
    argv = ["--postgres", "h:1", "--redis", "h:2", "--profile", "naive", "--overrides", '{"x": 1}']
    assert seed_module.main(argv) == 1
    assert "unknown key 'x'" in capsys.readouterr().err
