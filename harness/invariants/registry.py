"""The invariant registry: YAML name -> kind (parse + check), and checking a list of them.

An `invariants:` entry is a one-key mapping, the kind, with its parameters::

    - latency: {op: show_code, p99_ms: 300, during: steady}
    - recovers: {within: 6s, id: recovers-after-heal}

`id` (optional) names the invariant in verdicts and in `expect:`; it defaults to the
kind, or `kind#n` when a kind appears more than once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType, ModuleType
from typing import Any

from harness.history import Op
from harness.invariants import (
    availability,
    faults_took_effect,
    goodput,
    latency,
    no_false_green,
    no_lost_scans,
    recovers,
)
from harness.invariants.final_state import FinalState
from harness.invariants.verdict import Verdict, guarded
from harness.validate import Node

__all__ = ["KINDS", "Invariant", "Kind", "check_all", "check_one", "parse_invariants"]


@dataclass(frozen=True)
class Kind:
    """One kind of invariant: its YAML name, spec parser and checker."""

    name: str
    parse: Callable[[Node, tuple[str, ...] | None], Any]
    check: Callable[[Iterable[Op], FinalState, Any], Verdict]
    doc: str


def _kind(module: ModuleType) -> Kind:
    doc = (module.__doc__ or "").strip().splitlines()[0]
    return Kind(module.NAME, module.parse, module.check, doc)


KINDS: Mapping[str, Kind] = MappingProxyType(
    {
        k.name: k
        for k in map(
            _kind,
            (
                availability,
                latency,
                goodput,
                recovers,
                no_lost_scans,
                no_false_green,
                faults_took_effect,
            ),
        )
    }
)


@dataclass(frozen=True)
class Invariant:
    """One entry of `invariants:`: an id, a kind and its typed spec."""

    id: str
    kind: str
    spec: Any

    def check(self, history: Iterable[Op], final_state: FinalState) -> Verdict:
        return check_one(self, history, final_state)


def parse_invariants(node: Node, phases: tuple[str, ...] | None = None) -> tuple[Invariant, ...]:
    """Parse an `invariants:` list; `phases` (when known) checks every `during:`."""
    entries: list[tuple[str | None, str, Any, Node]] = []
    for el in node.elements():
        m = el.mapping()
        if len(m) != 1:
            raise el.fail(
                f"a mapping with exactly one invariant kind among {sorted(KINDS)}",
                "write e.g. '- latency: {op: show_code, p99_ms: 300}'",
            )
        kind_name, params = next(iter(m.items()))
        if kind_name not in KINDS:
            raise el.fail(f"an invariant kind among {sorted(KINDS)}", f"unknown kind {kind_name!r}")
        pnode = el.key(kind_name)
        if params is None:
            pnode = Node({}, pnode.source, pnode.path)
        body = dict(pnode.mapping())
        given_id = None
        if "id" in body:
            given_id = pnode.key("id").str()
            del body["id"]
        spec = KINDS[kind_name].parse(Node(body, pnode.source, pnode.path), phases)
        entries.append((given_id, kind_name, spec, el))
    if not entries:
        raise node.fail("a non-empty list of invariants (a check that cannot fail is a bug)")
    totals: dict[str, int] = {}
    for _, k, _, _ in entries:
        totals[k] = totals.get(k, 0) + 1
    seen: dict[str, int] = {}
    out: list[Invariant] = []
    ids: set[str] = set()
    for given, k, spec, el in entries:
        seen[k] = seen.get(k, 0) + 1
        iid = given or (k if totals[k] == 1 else f"{k}#{seen[k]}")
        if iid in ids:
            raise el.fail("a unique invariant id", f"id {iid!r} is used twice")
        ids.add(iid)
        out.append(Invariant(iid, k, spec))
    return tuple(out)


def check_one(invariant: Invariant, history: Iterable[Op], final_state: FinalState) -> Verdict:
    """Check one invariant; a crash is an unknown verdict. The verdict carries the id."""
    kind = KINDS.get(invariant.kind)
    if kind is None:
        return Verdict(invariant.id, None, {}, f"no checker for kind {invariant.kind!r}")
    verdict = guarded(invariant.id, kind.check, history, final_state, invariant.spec)
    return replace(verdict, name=invariant.id)


def check_all(
    invariants: Iterable[Invariant], history: Iterable[Op], final_state: FinalState
) -> tuple[Verdict, ...]:
    """Check every invariant against one history (materialised once) and final state."""
    ops = list(history)
    return tuple(check_one(inv, ops, final_state) for inv in invariants)
