"""Fake runs for the report, summary and browser tests: a run directory with a journal and
a history shaped like `harness.run` writes them, without starting anything."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from harness import journal as journal_io
from harness.history import NEVER_SENT, History, Op
from harness.invariants import FaultRecord, Phase, Verdict
from harness.journal import (
    CapacityRecord,
    ExperimentRef,
    RunJournal,
    TopologyRecord,
    WorkloadRecord,
)
from harness.load import LoadResult

DURATION = 20.0
CAPACITY = 200.0


def _op(i: int, name: str, t: float, outcome: str, latency: float, **kw: Any) -> Op:
    person = i % 100 + 1
    args = {"person": person} if name == "show_code" else {"scan_id": f"s{i}", "person": person}
    sent = kw.pop("sent", True)
    return Op(
        id=i,
        client_id=f"p{i % 50}",
        client_class=kw.pop("client_class", "impatient"),
        op=name,
        args=args,
        intended=t,
        sent=t + 0.001 if sent else None,
        completed=t + latency,
        outcome=outcome,  # type: ignore[arg-type]
        **kw,
    )


def ops_for(profile: str, seed: int = 1) -> list[Op]:
    """20 s of traffic: 0.5 C, a 2 C surge from 5 s to 10 s, then 0.5 C again.

    naive: the surge turns into timeouts and lost connections and stays that way
    (metastable); hardened: the excess is rejected with 503 and it recovers at once.
    """
    rng = random.Random(seed)
    out: list[Op] = []
    t, i = 0.0, 0
    while t < DURATION:
        surge = 5.0 <= t < 10.0
        rate = CAPACITY * (2.0 if surge else 0.5)
        t += rng.expovariate(rate)
        i += 1
        name = "scan" if i % 8 == 0 else "show_code"
        if profile == "naive" and t >= 5.0:
            roll = rng.random()
            if roll < 0.3:
                out.append(_op(i, name, t, "ok", 1.5 + rng.random()))
            elif roll < 0.6:
                out.append(_op(i, name, t, "fail", 3.0, error="timeout"))
            elif roll < 0.9:
                out.append(_op(i, name, t, "fail", 0.5, error="disconnected", cause="reopen"))
            else:
                out.append(_op(i, name, t, "fail", 0.0, error=NEVER_SENT, sent=False))
        elif surge and rng.random() < 0.5:
            out.append(_op(i, name, t, "fail", 0.002, status=503))
        else:
            out.append(_op(i, name, t, "ok", 0.005 + rng.random() * 0.02, status=200))
    return out


def verdicts_for(profile: str) -> tuple[Verdict, ...]:
    naive = profile == "naive"
    return (
        Verdict(
            "goodput",
            not naive,
            {"fraction_of_capacity": 0.31 if naive else 0.98, "ok": 1234},
            "goodput during surge",
        ),
        Verdict(
            "recovers",
            not naive,
            {
                "after": "surge_over",
                "trigger_end_s": 10.0,
                "recovery_s": "never" if naive else 0.5,
                "within_s": 4,
            },
            "never recovered after the trigger (surge_over) at 10.0s"
            if naive
            else "recovered 0.50s after the trigger (surge_over) at 10.0s",
        ),
        Verdict(
            "no_lost_scans",
            not naive,
            {"acknowledged": 100, "lost": 3 if naive else 0, "duplicated": 0},
            "3 acknowledged scans lost" if naive else "all stored once",
        ),
        Verdict(
            "faults_took_effect",
            None if naive else True,
            {"faults": 2, "took_effect": 1 if naive else 2},
            "no proof for: faults[1]" if naive else "all 2 faults took effect",
        ),
    )


def make_run(
    runs: Path,
    profile: str,
    *,
    experiment: str = "story",
    stamp: str = "20260101-070000-000",
    seed: int = 1,
    history: bool = True,
    outcome: str = "met",
) -> Path:
    """Write ``runs/<experiment>/<stamp>-<profile>/`` with a journal and (optionally) history."""
    path = runs / experiment / f"{stamp}-{profile}"
    path.mkdir(parents=True)
    naive = profile == "naive"
    if history:
        History(ops_for(profile, seed)).write(path / "history.jsonl.gz")
    record = RunJournal(
        experiment=ExperimentRef(
            experiment, "a fake surge <with> markup & a crash", f"experiments/{experiment}.yaml"
        ),
        profile=profile,
        seed=seed,
        backend="local",
        versions={"harness": "0.1.0", "postgres": "15"},
        topology=TopologyRecord(
            "reference", {}, ("naive", "hardened"), {}, {}, ("http://127.0.0.1:1",), "http://x"
        ),
        capacity=CapacityRecord(CAPACITY, "calibrated", profile, "2026-01-01T07:00:00+00:00", 0.3),
        workload=WorkloadRecord(
            DURATION,
            2.0,
            (
                Phase("steady", 0.0, 5.0, 100.0),
                Phase("surge", 5.0, 10.0, 400.0),
                Phase("after", 10.0, 20.0, 100.0),
            ),
            "show_code",
        ),
        load=LoadResult(4000, 3900, 100, 0, 0, 0, 0, 4000, 20.0, 1.0e9, 0.001, 0.004, 0.02),
        faults=(),
        fault_records=(
            FaultRecord(
                "faults[0]",
                "crash",
                12.0,
                14.0,
                True,
                "gateway-a exited",
                "crash of gateway gateway-a",
            ),
            FaultRecord(
                "faults[1]",
                "db_loss",
                16.0,
                16.0,
                None if naive else True,
                "postgres data deleted",
                "db_loss of postgres",
            ),
        ),
        verdicts=verdicts_for(profile),
        valid=not naive,
        expected="fail ['goodput', 'recovers']" if naive else "pass",
        outcome=outcome,  # type: ignore[arg-type]
        why="failed as expected: goodput, recovers" if naive else "all 4 hold, as expected",
        replay=f"harness run experiments/{experiment}.yaml --profile {profile} --seed {seed}",
        timings_s={"start": 0.7, "workload": 20.1},
    )
    journal_io.write(path, record)
    return path
