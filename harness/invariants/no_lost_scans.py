"""No lost scans: every acknowledged scan is in the database after drain, exactly once.

```yaml
- no_lost_scans: {}
```

Reads `final_state.scans` (scan id -> rows found). A scan id is acknowledged when any
attempt at it completed `ok`; a missing acknowledged scan is lost, a scan stored more
than once is duplicated. Scans whose outcome was unknown (`info`) and that turned up
are "recovered", not errors; those that did not turn up are simply not there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.history import Op
from harness.invariants.final_state import FinalState
from harness.invariants.verdict import Figure, Verdict
from harness.validate import Node

NAME = "no_lost_scans"


@dataclass(frozen=True)
class Spec:
    """No parameters: zero lost and zero duplicated is the only acceptable result."""


def parse(node: Node, phases: tuple[str, ...] | None = None) -> Spec:
    node.no_unknown_keys(frozenset())
    return Spec()


def check(history: Iterable[Op], final_state: FinalState, spec: Spec) -> Verdict:
    stored = final_state.scans
    if stored is None:
        return Verdict(NAME, None, {}, "the database was not read after drain")
    outcomes: dict[str, set[str]] = {}
    for o in history:
        if o.op == "scan":
            outcomes.setdefault(o.args.scan_id, set()).add(o.outcome)  # type: ignore[union-attr]
    acked = {s for s, oc in outcomes.items() if "ok" in oc}
    unknown = {s for s, oc in outcomes.items() if "ok" not in oc and "info" in oc}
    failed = {s for s, oc in outcomes.items() if oc == {"fail"}}
    present = {s for s, n in stored.items() if n > 0}
    lost = sorted(acked - present)
    duplicated = sorted(s for s, n in stored.items() if n > 1 and s in outcomes)
    figures: dict[str, Figure] = {
        "acknowledged": len(acked),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "recovered": len(unknown & present),
        "unknown_absent": len(unknown - present),
        "failed_but_stored": len(failed & present),
        "stored_not_in_history": len(present - set(outcomes)),
    }
    evidence = tuple(
        [f"lost: {s}" for s in lost[:10]]
        + [f"duplicated: {s} x{stored[s]}" for s in duplicated[:10]]
        + [f"failed but stored: {s}" for s in sorted(failed & present)[:5]]
    )
    if lost or duplicated:
        return Verdict(
            NAME,
            False,
            figures,
            f"{len(lost)} of {len(acked)} acknowledged scans lost, {len(duplicated)} duplicated",
            evidence,
        )
    if not acked:
        return Verdict(NAME, None, figures, "no scan was acknowledged: nothing to lose", evidence)
    return Verdict(
        NAME, True, figures, f"all {len(acked)} acknowledged scans stored once", evidence
    )
