"""No false green: a code shown after a red result was acknowledged is never green.

```yaml
- no_false_green: {}
- no_false_green: {grace_ms: 0, min_reads: 1}
```

A person turns red when an ingest containing a positive result for them completes
`ok`. Every successful show-code for that person sent after that moment (plus
`grace_ms`, real time) must not return green (`value["colour"]`). Red stays red in the
reference system, so any later green is a violation. Fewer than `min_reads` such reads
make the verdict unknown: the workload gave the check nothing to look at.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.history import Op
from harness.invariants._values import parse_ms
from harness.invariants.final_state import FinalState
from harness.invariants.verdict import Figure, Verdict
from harness.validate import Node
from harness.workload import Ingest, ShowCode

NAME = "no_false_green"


@dataclass(frozen=True)
class Spec:
    grace_ms: float = 0.0
    min_reads: int = 1


def parse(node: Node, phases: tuple[str, ...] | None = None) -> Spec:
    node.no_unknown_keys(frozenset({"grace_ms", "min_reads"}))
    m = node.mapping()
    return Spec(
        grace_ms=parse_ms(node.key("grace_ms")) if "grace_ms" in m else 0.0,
        min_reads=node.key("min_reads", 1).int(minimum=0),
    )


def colour(value: Any) -> str | None:
    """The colour a show-code returned: `{"colour": "red", ...}` or a bare string."""
    if isinstance(value, dict):
        c = value.get("colour", value.get("color"))
        return c if isinstance(c, str) else None
    return value if isinstance(value, str) else None


def check(history: Iterable[Op], final_state: FinalState, spec: Spec) -> Verdict:
    ops = list(history)
    red_at: dict[int, tuple[float, int]] = {}  # person -> (acknowledged at, ingest op id)
    for o in ops:
        if o.op == "ingest" and o.outcome == "ok" and isinstance(o.args, Ingest):
            for r in o.args.results:
                if r.result == "positive":
                    prev = red_at.get(r.person_id)
                    if prev is None or o.completed < prev[0]:
                        red_at[r.person_id] = (o.completed, o.id)
    grace = spec.grace_ms / 1000.0
    checked = unreadable = 0
    violations: list[str] = []
    for o in ops:
        if o.op != "show_code" or o.outcome != "ok" or not isinstance(o.args, ShowCode):
            continue
        red = red_at.get(o.args.person_id)
        invoked = o.sent if o.sent is not None else o.intended
        if red is None or invoked <= red[0] + grace:
            continue
        c = colour(o.value)
        if c is None:
            unreadable += 1
            continue
        checked += 1
        if c == "green":
            violations.append(
                f"person {o.args.person_id}: red acknowledged at {red[0]:.3f}s (ingest op"
                f" {red[1]}), show_code op {o.id} sent {invoked:.3f}s returned green"
            )
    figures: dict[str, Figure] = {
        "acknowledged_reds": len(red_at),
        "reads_checked": checked,
        "reads_without_colour": unreadable,
        "false_greens": len(violations),
    }
    if violations:
        return Verdict(
            NAME,
            False,
            figures,
            f"{len(violations)} of {checked} reads after an acknowledged red returned green",
            tuple(violations[:10]),
        )
    if checked < spec.min_reads:
        return Verdict(
            NAME,
            None,
            figures,
            f"only {checked} reads after an acknowledged red (need {spec.min_reads}):"
            " nothing to judge",
        )
    return Verdict(NAME, True, figures, f"none of {checked} reads after a red was green")
