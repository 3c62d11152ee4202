"""One system per profile reused between runs: what shapes the key, what the pool keeps
and tears down, the reset's check, and the fresh rerun of an aborted run on a reused
system."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from harness.backends import ComponentEndpoint, Endpoints, LinkEndpoint
from harness.experiment import load_experiment
from harness.invariants import Verdict
from harness.journal import CapacityRecord
from harness.run import RunOptions, RunResult, lifecycle
from harness.run.reuse import ResetFailed, SystemPool, check_reset, reuse_key
from harness.topology import load_topology


def experiment(tmp_path: Path, faults: list[Any], name: str = "exp", **system: Any) -> Any:
    data = {
        "name": "t",
        "description": "reuse",
        "system": {"proxy": "faults", **system},
        "workload": {"duration": "20s", "rate": [{"at": "0s", "rps": 20}]},
        "faults": faults,
        "invariants": [{"availability": {"min": 0.5}}],
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_experiment(path)


LATENCY = {"at": "2s", "for": "2s", "latency": {"link": "app->postgres", "ms": 50}}
KILL = {"at": "2s", "kill": {"component": "app-1"}}


def test_the_key_names_everything_that_shapes_the_system(tmp_path: Path) -> None:
    opts = RunOptions(profile="hardened", seed=3)
    a = reuse_key(experiment(tmp_path, [KILL], "a"), opts)
    b = reuse_key(experiment(tmp_path, [{**KILL, "at": "5s"}], "b"), opts)
    assert a is not None and a == b  # other faults on processes: the same system
    assert a[0] == ("local", str(load_topology(profile="hardened").source), "hardened")
    others = [
        reuse_key(experiment(tmp_path, [LATENCY], "c"), opts),  # another link proxied
        reuse_key(experiment(tmp_path, [KILL], "d", app_workers=3), opts),  # parameters
        reuse_key(experiment(tmp_path, [KILL], "e"), dataclasses.replace(opts, seed=4)),
        reuse_key(experiment(tmp_path, [KILL], "f"), dataclasses.replace(opts, proxy_all=True)),
    ]
    for other in others:
        assert other is not None and other[0] == a[0] and other[1] != a[1]
    naive = reuse_key(experiment(tmp_path, [KILL], "g"), dataclasses.replace(opts, profile="naive"))
    assert naive is not None and naive[0] != a[0]


def test_a_database_loss_never_shares_its_system(tmp_path: Path) -> None:
    exp = experiment(tmp_path, [{"at": "2s", "db_loss": "postgres"}])
    assert reuse_key(exp, RunOptions(profile="hardened")) is None


class Owner(contextlib.ExitStack):
    def __init__(self, log: list[str], name: str) -> None:
        super().__init__()
        self.callback(log.append, f"closed {name}")


def test_the_pool_keeps_one_system_per_slot_and_tears_down_what_it_replaces(
    tmp_path: Path,
) -> None:
    log: list[str] = []
    kill, slow = experiment(tmp_path, [KILL], "a"), experiment(tmp_path, [LATENCY], "b")
    hardened, naive = RunOptions(profile="hardened"), RunOptions(profile="naive")
    one, two, three = object(), object(), object()
    with SystemPool() as pool:
        assert pool.take(kill, hardened) is None
        assert pool.keep(kill, hardened, one, Owner(log, "one"))  # type: ignore[arg-type]
        assert pool.keep(kill, naive, two, Owner(log, "two"))  # type: ignore[arg-type]
        assert pool.take(kill, hardened) is one and pool.take(kill, naive) is two
        # back from a run: kept with its own teardown, not the run's empty one
        assert pool.keep(kill, hardened, one, contextlib.ExitStack())  # type: ignore[arg-type]
        assert log == [] and pool.reused == 2 and pool.started == 2
        # another shape in the same slot: the kept system goes, the run starts its own
        assert pool.take(slow, hardened) is None and log == ["closed one"]
        assert pool.keep(slow, hardened, three, Owner(log, "three"))  # type: ignore[arg-type]
        pool.forget(slow, hardened)
        assert log == ["closed one", "closed three"]
        db_loss = experiment(tmp_path, [{"at": "2s", "db_loss": "postgres"}], "c")
        assert not pool.keep(db_loss, naive, object(), contextlib.ExitStack())  # type: ignore[arg-type]
    assert log == ["closed one", "closed three", "closed two"]


def _system(proxies: dict[str, Any], running: bool = True, port: int = 1) -> Any:
    topo = load_topology(profile="naive")
    link = next(lk for lk in topo.links if lk.name == "app-1->postgres")
    links = {
        link.name: LinkEndpoint(link.name, link.source, link.target, "h:9", "h:5", True),
        "app-1->redis": LinkEndpoint("app-1->redis", "app-1", "redis", "h:6", "h:6", False),
    }
    comps = {"redis": ComponentEndpoint("redis", "redis", "127.0.0.1", port, "redis")}
    return SimpleNamespace(
        topology=topo,
        endpoints=Endpoints((), "", comps, links),
        toxiproxy=SimpleNamespace(proxies=lambda: proxies),
        is_running=lambda _name: running,
        kill=lambda *_: None,
    )


def test_the_reset_check_wants_clean_links_and_every_component_up(monkeypatch) -> None:
    from harness.run import reuse

    monkeypatch.setattr(reuse.probes, "check", lambda probe, host, port, password=None: port == 1)
    clean = {"app-1->postgres": {"enabled": True, "toxics": [], "upstream": "h:5"}}
    check_reset(_system(clean))
    bad = [
        ({}, "gone"),
        ({"app-1->postgres": {**clean["app-1->postgres"], "enabled": False}}, "enabled=False"),
        ({"app-1->postgres": {**clean["app-1->postgres"], "toxics": [{"n": 1}]}}, "toxics"),
        ({"app-1->postgres": {**clean["app-1->postgres"], "upstream": "h:7"}}, "leads to h:7"),
    ]
    for proxies, why in bad:
        with pytest.raises(ResetFailed, match=why):
            check_reset(_system(proxies))
    with pytest.raises(ResetFailed, match="redis is not running"):
        check_reset(_system(clean, running=False))
    with pytest.raises(ResetFailed, match="redis does not answer"):
        check_reset(_system(clean, port=2))


def _result(outcome: str, reused: bool, aborted: str | None = None) -> RunResult:
    return RunResult(
        experiment="x", profile="naive", seed=1, backend="local", valid=False,
        verdicts=(Verdict("steady_state", False),), outcome=outcome, why=outcome,
        expected="pass", capacity=CapacityRecord(None, "none"), load=None, faults=(),
        run_dir=Path("runs/x/1"), journal=Path("runs/x/1/journal.json"), replay="",
        aborted=aborted, reused=reused,
    )  # fmt: skip


def test_an_aborted_run_on_a_reused_system_is_run_again_on_a_fresh_one(monkeypatch) -> None:
    forgotten: list[str] = []
    pool = SimpleNamespace(forget=lambda exp, opts: forgotten.append(opts.profile))
    calls: list[Any] = []

    def fake(results):
        def once(experiment, options, *, system=None, pool=None):
            calls.append(options)
            return next(results)

        return once

    broken = _result("not_met", reused=True, aborted="p99 500 ms")
    fresh = _result("met", reused=False)
    monkeypatch.setattr(lifecycle, "_run_once", fake(iter([broken, fresh])))
    assert lifecycle.run(None, RunOptions(profile="naive"), pool=pool) is fresh  # type: ignore[arg-type]
    assert forgotten == ["naive"] and calls[1].rerun_of
    # on a fresh system an aborted run stands; without a pool nothing changes
    for results, with_pool in (([_result("not_met", False, "x")], pool), ([broken], None)):
        calls.clear()
        monkeypatch.setattr(lifecycle, "_run_once", fake(iter(results)))
        lifecycle.run(None, RunOptions(profile="naive"), pool=with_pool)  # type: ignore[arg-type]
        assert len(calls) == 1
