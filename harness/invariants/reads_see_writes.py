"""Reads see writes: a read that starts after a write was acknowledged returns what was
written (no stale read after an acknowledgement).

```yaml
- reads_see_writes:
    write: {op: ingest, each: results, where: {result: positive}, key: "${item.person_id}"}
    read: {op: show_code, key: "${person}", expect: {colour: red}}
    grace_ms: 0                 # reads sent within this long after the ack are not judged
    min_reads: 1                # fewer judged reads: unknown (nothing to look at)
```

A write acknowledges every key its `key` template gives (per item of the list value
`each`, filtered by `where`) when it completes `ok`. Every successful read of that key
sent later than the latest such acknowledgement plus `grace_ms` must return, in each
`expect` field (a field the read operation keeps), the value given, which may be a
template of the write's values (`"${item.result}"`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.history import Op
from harness.invariants.context import Context
from harness.invariants.final_state import FinalState
from harness.invariants.verdict import Figure, Verdict
from harness.templates import ITEM_NAME, Template, TemplateError, compile_text
from harness.validate import Node
from harness.values import parse_ms

NAME = "reads_see_writes"


@dataclass(frozen=True)
class Spec:
    write: str
    write_key: Template
    read: str
    read_key: Template
    expect: Mapping[str, Template]
    each: str | None = None
    where: Mapping[str, Any] = field(default_factory=dict)
    grace_ms: float = 0.0
    min_reads: int = 1


def _template(node: Node, names: set[str]) -> Template:
    try:
        t = compile_text(str(node.value), typed=True)
    except TemplateError as exc:
        raise node.fail("a template like ${item_id}", str(exc)) from None
    unknown = t.names - names
    if unknown:
        raise node.fail(f"a template of the values {sorted(names)}", f"unknown {sorted(unknown)}")
    return t


def parse(node: Node, ctx: Context) -> Spec:
    node.no_unknown_keys({"write", "read", "grace_ms", "min_reads"})
    operations = ctx.operations
    if operations is None:
        raise node.fail("no reads_see_writes: the system declares no operations")
    wn, rn = node.key("write"), node.key("read")
    wn.no_unknown_keys({"op", "each", "where", "key"})
    rn.no_unknown_keys({"op", "key", "expect"})
    write = operations.op(wn.key("op").choice(operations.writes))
    each = None
    wnames = set(write.draws)
    if wn.has("each"):
        lists = tuple(v for v in write.draws if write.generators[v].kind == "list")
        each = wn.key("each").choice(lists)
        wnames |= {ITEM_NAME}
    where = dict(wn.key("where", {}).mapping())
    if where and each is None:
        raise wn.key("where").fail("no where: without each: (it filters a list's items)")
    write_key = _template(wn.key("key"), wnames)
    reads = tuple(n for n in operations.names if not operations.op(n).write)
    read = operations.op(rn.key("op").choice(reads))
    kept = {name for name, _ in read.keep}
    expect = {}
    for fname, en in rn.key("expect").items():
        if fname not in kept:
            raise en.fail(
                f"a field {read.name} keeps (keep: in its operation): {sorted(kept)}",
                f"{fname!r} is not kept",
            )
        expect[fname] = _template(en, wnames)
    if not expect:
        raise rn.key("expect").fail("at least one field the read must return")
    return Spec(
        write=write.name,
        write_key=write_key,
        read=read.name,
        read_key=_template(rn.key("key"), set(read.draws)),
        expect=expect,
        each=each,
        where=where,
        grace_ms=parse_ms(node.key("grace_ms")) if node.has("grace_ms") else 0.0,
        min_reads=node.key("min_reads", 1).int(minimum=0),
    )


def _items(spec: Spec, args: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    if spec.each is None:
        yield args
        return
    for item in args.get(spec.each) or ():
        if all(isinstance(item, dict) and item.get(k) == v for k, v in spec.where.items()):
            yield {**args, ITEM_NAME: item}


def check(history: Iterable[Op], final_state: FinalState, spec: Spec) -> Verdict:
    ops = list(history)
    acks: dict[str, list[tuple[float, int, Mapping[str, Any]]]] = {}
    for o in ops:
        if o.op == spec.write and o.outcome == "ok":
            for env in _items(spec, o.args):
                acks.setdefault(str(spec.write_key.render(env)), []).append(
                    (o.completed, o.id, env)
                )
    for acked in acks.values():
        acked.sort(key=lambda e: e[0])
    grace = spec.grace_ms / 1000.0
    checked = unreadable = 0
    violations: list[str] = []
    for o in ops:
        if o.op != spec.read or o.outcome != "ok":
            continue
        entries = acks.get(str(spec.read_key.render(o.args)))
        if not entries:
            continue
        invoked = o.sent if o.sent is not None else o.intended
        before = [e for e in entries if e[0] + grace < invoked]
        if not before:
            continue
        acked_at, write_id, env = before[-1]
        value = o.value if isinstance(o.value, dict) else {}
        if any(value.get(f) is None for f in spec.expect):
            unreadable += 1
            continue
        checked += 1
        wrong = {
            f: (value.get(f), t.render(env))
            for f, t in spec.expect.items()
            if value.get(f) != t.render(env) and str(value.get(f)) != str(t.render(env))
        }
        if wrong:
            got = ", ".join(f"{f}={s!r} (expected {w!r})" for f, (s, w) in wrong.items())
            violations.append(
                f"{spec.read} op {o.id} sent {invoked:.3f}s returned {got}; {spec.write} op"
                f" {write_id} was acknowledged at {acked_at:.3f}s"
            )
    figures: dict[str, Figure] = {
        "acknowledged_keys": len(acks),
        "reads_checked": checked,
        "reads_without_fields": unreadable,
        "stale_reads": len(violations),
    }
    if violations:
        return Verdict(
            NAME,
            False,
            figures,
            f"{len(violations)} of {checked} reads after an acknowledged {spec.write} missed it",
            tuple(violations[:10]),
        )
    if checked < spec.min_reads:
        return Verdict(
            NAME,
            None,
            figures,
            f"only {checked} reads after an acknowledged {spec.write} (need {spec.min_reads}):"
            " nothing to judge",
        )
    return Verdict(NAME, True, figures, f"all {checked} reads after an acknowledged write saw it")
