"""Invariants: what a run must prove, read from the history and the final state.

One kind per module, each with `NAME`, a frozen `Spec`, `parse(node, context)` and a
pure `check(history, final_state, spec) -> Verdict`. `valid` is True, False or None
(unknown); a crashing checker gives unknown, never a pass; `compose` ranks
false > unknown > true. None of them knows a particular system: operations, state
readers and presets come from the system under test (`harness.sut`), through `Context`.

    invariants = parse_invariants(Node(yaml_list, "exp.yaml", "invariants"), context)
    verdicts = check_all(invariants, history, FinalState(capacity=800.0, ...))
    overall = compose(verdicts)

| kind | proves |
|---|---|
| `availability` | share of requests/attempts that succeeded, per op, client class, phase, window |
| `latency` | percentiles from the intended send time, per op and phase |
| `goodput` | ok ops/s during overload as a fraction of C |
| `recovers` | time from the trigger's end to the SLO holding again; never = metastable |
| `acknowledged_writes` | every acknowledged write stored once, as written |
| `reads_see_writes` | a read after an acknowledged write returns it |
| `faults_took_effect` | every fault has evidence it acted |
"""

from harness.invariants.context import Context
from harness.invariants.during import ALL, During
from harness.invariants.final_state import FaultRecord, FinalState, Phase, fault_records
from harness.invariants.registry import (
    KINDS,
    Invariant,
    Kind,
    check_all,
    check_one,
    parse_invariants,
)
from harness.invariants.verdict import Figure, Verdict, compose, guarded

__all__ = [
    "ALL",
    "KINDS",
    "Context",
    "During",
    "FaultRecord",
    "Figure",
    "FinalState",
    "Invariant",
    "Kind",
    "Phase",
    "Verdict",
    "check_all",
    "check_one",
    "compose",
    "fault_records",
    "guarded",
    "parse_invariants",
]
