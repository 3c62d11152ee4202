"""Fake runs for the report, summary and browser tests: a run directory with a journal and
a history shaped like `harness.run` writes them, without starting anything."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from harness.history import NEVER_SENT, History, Op
from harness.workload import Scan, ShowCode

DURATION = 20.0
CAPACITY = 200.0


def _op(i: int, name: str, t: float, outcome: str, latency: float, **kw: Any) -> Op:
    args = ShowCode(i % 100 + 1) if name == "show_code" else Scan(f"s{i}", i % 100 + 1, 7)
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


def verdicts_for(profile: str) -> list[dict[str, Any]]:
    naive = profile == "naive"
    return [
        {
            "name": "goodput",
            "outcome": "fail" if naive else "pass",
            "valid": not naive,
            "message": "goodput during surge",
            "figures": {"fraction_of_capacity": 0.31 if naive else 0.98, "ok": 1234},
            "evidence": [],
        },
        {
            "name": "recovers",
            "outcome": "fail" if naive else "pass",
            "valid": not naive,
            "message": "never recovered" if naive else "recovered 0.50s after the trigger",
            "figures": {"recovery_s": "never" if naive else 0.5, "within_s": 4},
            "evidence": [],
        },
        {
            "name": "no_lost_scans",
            "outcome": "fail" if naive else "pass",
            "valid": not naive,
            "message": "3 acknowledged scans lost" if naive else "all stored once",
            "figures": {"acknowledged": 100, "lost": 3 if naive else 0, "duplicated": 0},
            "evidence": [],
        },
        {
            "name": "faults_took_effect",
            "outcome": "unknown" if naive else "pass",
            "valid": None if naive else True,
            "message": "no proof for: faults[1]" if naive else "all 2 faults took effect",
            "figures": {"faults": 2, "took_effect": 1 if naive else 2},
            "evidence": [],
        },
    ]


def make_run(
    runs: Path,
    profile: str,
    *,
    experiment: str = "story",
    stamp: str = "20260101-070000-000",
    seed: int = 1,
    history: bool = True,
) -> Path:
    """Write ``runs/<experiment>/<stamp>-<profile>/`` with a journal and (optionally) history."""
    path = runs / experiment / f"{stamp}-{profile}"
    path.mkdir(parents=True)
    naive = profile == "naive"
    if history:
        History(ops_for(profile, seed)).write(path / "history.jsonl")
    journal = {
        "journal_version": 1,
        "experiment": {
            "name": experiment,
            "description": "a fake surge <with> markup & a crash",
            "path": f"experiments/{experiment}.yaml",
            "copy": "experiment.yaml",
        },
        "profile": profile,
        "seed": seed,
        "backend": "local",
        "versions": {"harness": "0.1.0", "postgres": "15"},
        "topology": {"name": "reference", "components": {"postgres": {"port": 5432}}},
        "capacity_rps": CAPACITY,
        "workload": {
            "duration_s": DURATION,
            "compression": 2.0,
            "phases": [
                {"name": "steady", "start": 0.0, "end": 5.0, "peak_rps": 100.0},
                {"name": "surge", "start": 5.0, "end": 10.0, "peak_rps": 400.0},
                {"name": "after", "start": 10.0, "end": 20.0, "peak_rps": 100.0},
            ],
        },
        "load": {"arrivals": 4000, "sent": 3900, "never_sent": 100, "wall_start": 1.0e9},
        "faults": [],
        "fault_records": [
            {
                "name": "faults[0]",
                "kind": "crash",
                "start": 12.0,
                "end": 14.0,
                "took_effect": True,
                "evidence": "gateway-a exited",
                "target": "crash of gateway gateway-a",
            },
            {
                "name": "faults[1]",
                "kind": "db_loss",
                "start": 16.0,
                "end": 16.0,
                "took_effect": None if naive else True,
                "evidence": "postgres data deleted",
                "target": "db_loss of postgres",
            },
        ],
        "verdicts": verdicts_for(profile),
        "valid": not naive,
        "expected": "fail ['goodput', 'recovers']" if naive else "pass",
        "met": True,
        "why": "failed as expected: goodput, recovers" if naive else "all 4 hold, as expected",
        "aborted": None,
        "timings_s": {"start": 0.7, "workload": 20.1},
        "history": "history.jsonl",
        "logs": "logs/",
        "replay": f"harness run experiments/{experiment}.yaml --profile {profile} --seed {seed}",
        "report": "report.html",
        "summary": "summary.md",
    }
    (path / "journal.json").write_text(json.dumps(journal, indent=1))
    return path
