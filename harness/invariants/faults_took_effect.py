"""Every fault took effect: each scheduled fault has evidence that it acted on the system.

```yaml
- faults_took_effect: {}
```

A fault that did not take effect makes every other verdict meaningless (the system was
never tested), so it fails; a fault nobody could vouch for is unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.history import Op
from harness.invariants.context import Context
from harness.invariants.final_state import FaultRecord, FinalState
from harness.invariants.verdict import Figure, Verdict
from harness.validate import Node

NAME = "faults_took_effect"
_STATE = {True: "took effect", False: "NO EFFECT", None: "unproven"}


@dataclass(frozen=True)
class Spec:
    """No parameters."""


def parse(node: Node, ctx: Context) -> Spec:
    node.no_unknown_keys(frozenset())
    return Spec()


def check(history: Iterable[Op], final_state: FinalState, spec: Spec) -> Verdict:
    return faults_verdict(final_state.faults)


def faults_verdict(faults: Sequence[FaultRecord] | None) -> Verdict:
    """The verdict on a run's fault records (the run checks it whatever the file lists)."""
    if faults is None:
        return Verdict(NAME, None, {}, "the fault layer reported no evidence")
    evidence = tuple(
        f"{f.name} ({f.kind}{' ' + f.target if f.target else ''}) "
        f"{f.start:.2f}s..{'' if f.end is None else f'{f.end:.2f}s'}: "
        f"{_STATE[f.took_effect]}"
        f"{' - ' + f.evidence if f.evidence else ''}"
        for f in faults
    )
    missed = [f.name for f in faults if f.took_effect is False]
    unproven = [f.name for f in faults if f.took_effect is None]
    figures: dict[str, Figure] = {
        "faults": len(faults),
        "took_effect": sum(f.took_effect is True for f in faults),
        "no_effect": len(missed),
        "unproven": len(unproven),
    }
    if missed:
        return Verdict(NAME, False, figures, "no effect: " + ", ".join(missed), evidence)
    if unproven:
        return Verdict(NAME, None, figures, "no proof for: " + ", ".join(unproven), evidence)
    if not faults:
        return Verdict(NAME, True, figures, "no faults were scheduled")
    return Verdict(NAME, True, figures, f"all {len(faults)} faults took effect", evidence)
