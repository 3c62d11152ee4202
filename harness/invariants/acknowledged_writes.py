"""Acknowledged writes: every write the system acknowledged is in its final state exactly
once, as written (Jepsen's set checker, on any system).

```yaml
- acknowledged_writes:
    op: scan                    # a write operation that declares its `key:`
    state: scans                # a state reader the system declares (harness.state)
    field: scan_id              # the field of a stored row holding the write's key (default: key)
    match: {person_id: "${person}", venue_id: "${venue}"}   # stored fields = the write's values
```

A write (keyed by its operation's `key:` template) is acknowledged when any attempt at it
completed `ok`. Acknowledged but not stored is lost; stored more than once is duplicated;
stored with other contents than `match` says is mismatched (a false acknowledgement):
each of those fails the invariant. Every acknowledged attempt is compared, so a key that
was acknowledged twice with different contents (a conflicting repeat the system should
have refused) is mismatched whichever of the two it stored. Writes whose outcome was
unknown (`info`) and that turned up are "recovered", not errors; stored writes that were
refused are counted too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.history import Op
from harness.invariants.context import Context
from harness.invariants.final_state import FinalState
from harness.invariants.verdict import Figure, Verdict
from harness.templates import Template, TemplateError, compile_text
from harness.validate import Node

NAME = "acknowledged_writes"


@dataclass(frozen=True)
class Spec:
    op: str
    state: str
    key: Template
    column: str = "key"  # `field:` in the file
    match: Mapping[str, Template] = field(default_factory=dict)


def parse(node: Node, ctx: Context) -> Spec:
    node.no_unknown_keys({"op", "state", "field", "match"})
    operations = ctx.operations
    if operations is None:
        raise node.fail("no acknowledged_writes: the system declares no operations")
    on = node.key("op")
    op = operations.ops.get(on.choice(operations.writes))
    assert op is not None
    if op.key is None:
        raise on.fail(f"a write that declares `key:` (operations.{op.name}.key)")
    sn = node.key("state")
    if not ctx.state:
        raise sn.fail("a state reader, but the system declares none (state: in its topology)")
    state = sn.choice(ctx.state)
    match = {}
    for fname, tn in node.key("match", {}).items():
        try:
            t = compile_text(str(tn.value), typed=True)
        except TemplateError as exc:
            raise tn.fail("a template of the write's values", str(exc)) from None
        unknown = t.names - set(op.draws)
        if unknown:
            raise tn.fail(
                f"a template of {op.name}'s values {list(op.draws)}", f"unknown {sorted(unknown)}"
            )
        match[fname] = t
    return Spec(op.name, state, op.key, node.key("field", "key").str(), match)


def wants(spec: Spec, history: Iterable[Op]) -> Mapping[str, Sequence[str]]:
    """The state to read: every key of a write attempted (for readers that read per key)."""
    keys = dict.fromkeys(str(spec.key.render(o.args)) for o in history if o.op == spec.op)
    return {spec.state: tuple(keys)}


def _same(stored: Any, wanted: Any) -> bool:
    return stored == wanted or str(stored) == str(wanted)


def _fields_absent(rows: Sequence[Mapping[str, Any]], spec: Spec) -> str | None:
    """Why the rows cannot be judged: a field `field:` or `match:` names that no row has
    (a typo, or a query that does not select it: every write would look lost)."""
    if not rows:
        return None
    seen = sorted(set().union(*(row.keys() for row in rows)))
    for name, key in [(spec.column, "field"), *((f, "match") for f in spec.match)]:
        if name not in seen:
            return (
                f"no row of the state {spec.state!r} has the field {name!r} that `{key}:`"
                f" names (its rows have: {seen}); cannot judge"
            )
    return None


def check(history: Iterable[Op], final_state: FinalState, spec: Spec) -> Verdict:
    reading = final_state.data.get(spec.state)
    if reading is None:
        return Verdict(NAME, None, {}, f"the state {spec.state!r} was not read after the run")
    if reading.rows is None:
        return Verdict(NAME, None, {}, f"reading {spec.state!r} failed: {reading.error}")
    absent = _fields_absent(reading.rows, spec)
    if absent:
        return Verdict(NAME, None, {"rows": len(reading.rows)}, absent)
    outcomes: dict[str, set[str]] = {}
    oks: dict[str, list[Mapping[str, Any]]] = {}  # the values of each acknowledged attempt
    for o in history:
        if o.op == spec.op:
            k = str(spec.key.render(o.args))
            outcomes.setdefault(k, set()).add(o.outcome)
            if o.outcome == "ok":
                oks.setdefault(k, []).append(o.args)
    stored: dict[str, list[Mapping[str, Any]]] = {}
    for row in reading.rows:
        if spec.column in row:
            stored.setdefault(str(row[spec.column]), []).append(row)
    acked = {k for k, oc in outcomes.items() if "ok" in oc}
    unknown = {k for k, oc in outcomes.items() if "ok" not in oc and "info" in oc}
    failed = {k for k, oc in outcomes.items() if oc == {"fail"}}
    present = set(stored)
    lost = sorted(acked - present)
    duplicated = sorted(k for k, rows in stored.items() if len(rows) > 1 and k in outcomes)
    mismatched = []
    for k in sorted(acked & present):
        row = stored[k][0]
        for written in oks[k]:  # two writes acknowledged with one key: both must be stored
            want = {f: t.render(written) for f, t in spec.match.items()}
            wrong = {f: (row.get(f), w) for f, w in want.items() if not _same(row.get(f), w)}
            if wrong:
                mismatched.append((k, wrong))
                break
    figures: dict[str, Figure] = {
        "acknowledged": len(acked),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "mismatched": len(mismatched),
        "recovered": len(unknown & present),
        "unknown_absent": len(unknown - present),
        "failed_but_stored": len(failed & present),
        "stored_not_in_history": len(present - set(outcomes)),
    }
    evidence = tuple(
        [f"lost: {k}" for k in lost[:10]]
        + [f"duplicated: {k} x{len(stored[k])}" for k in duplicated[:10]]
        + [
            f"mismatched: {k}: "
            + ", ".join(f"{f} stored {s!r}, written {w!r}" for f, (s, w) in wrong.items())
            for k, wrong in mismatched[:10]
        ]
        + [f"failed but stored: {k}" for k in sorted(failed & present)[:5]]
        + ([f"not settled: {final_state.settled}"] if final_state.settled else [])
    )
    what = f"acknowledged {spec.op} writes"
    if lost or duplicated or mismatched:
        return Verdict(
            NAME,
            False,
            figures,
            f"{len(lost)} of {len(acked)} {what} lost, {len(duplicated)} duplicated,"
            f" {len(mismatched)} stored with other contents",
            evidence,
        )
    if not acked:
        return Verdict(
            NAME, None, figures, f"no {spec.op} write was acknowledged: nothing to lose", evidence
        )
    return Verdict(
        NAME, True, figures, f"all {len(acked)} {what} stored once, as written", evidence
    )
