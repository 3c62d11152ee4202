"""The invariant registry: YAML name -> kind (parse + check), and checking a list of them.

An `invariants:` entry is a one-key mapping, the kind, with its parameters::

    - latency: {op: show_code, p99_ms: 300, during: steady}
    - recovers: {within: 6s, id: recovers-after-heal}
    - no_lost_scans: {}                 # a preset the system under test declares

`id` (optional) names the invariant in verdicts and in `expect:`; it defaults to the
kind (or preset), or `kind#n` when it appears more than once. Kinds are parsed with a
`Context`: the phases of the workload, the system's operations, its SLO operation, its
state readers, its presets and any kinds its domain adds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from harness.history import Op
from harness.invariants import (
    acknowledged_writes,
    alerts,
    availability,
    faults_took_effect,
    goodput,
    latency,
    reads_see_writes,
    recovers,
)
from harness.invariants.context import Context, PresetLike
from harness.invariants.final_state import FinalState
from harness.invariants.verdict import Verdict, guarded
from harness.validate import Node

__all__ = [
    "KINDS",
    "Context",
    "Invariant",
    "Kind",
    "PresetLike",
    "check_all",
    "check_one",
    "parse_invariants",
]


@dataclass(frozen=True)
class Kind:
    """One kind of invariant: its YAML name, spec parser and checker."""

    name: str
    parse: Callable[[Node, Context], Any]
    check: Callable[[Iterable[Op], FinalState, Any], Verdict]
    doc: str = ""
    wants: Callable[[Any, Iterable[Op]], Mapping[str, Sequence[str]]] = field(
        default=lambda _spec, _history: {}
    )
    """The state readers it needs after a run, and the keys to read (per-key readers)."""


def _wants_nothing(_spec: Any, _history: Iterable[Op]) -> Mapping[str, Sequence[str]]:
    return {}


def _builtin() -> Mapping[str, Kind]:
    modules = (
        availability,
        latency,
        goodput,
        recovers,
        acknowledged_writes,
        reads_see_writes,
        faults_took_effect,
        alerts,
    )
    out = {}
    for module in modules:
        doc = (module.__doc__ or "").strip().splitlines()[0]
        wants = getattr(module, "wants", _wants_nothing)
        out[module.NAME] = Kind(module.NAME, module.parse, module.check, doc, wants)
    return MappingProxyType(out)


KINDS: Mapping[str, Kind] = _builtin()
"""The generic kinds every system gets; a domain may add its own (`Context.kinds`)."""


@dataclass(frozen=True)
class Invariant:
    """One entry of `invariants:`: an id, a kind and its typed spec."""

    id: str
    kind: str
    spec: Any
    checker: Kind | None = None

    def check(self, history: Iterable[Op], final_state: FinalState) -> Verdict:
        return check_one(self, history, final_state)

    def wants(self, history: Iterable[Op]) -> Mapping[str, Sequence[str]]:
        """The state readers this invariant needs after the run, with the keys to read."""
        return {} if self.checker is None else self.checker.wants(self.spec, history)


def parse_invariants(node: Node, context: Context | None = None) -> tuple[Invariant, ...]:
    """Parse an `invariants:` list against `context` (phases, operations, presets, ...)."""
    ctx = context or Context()
    kinds = {**KINDS, **ctx.kinds}
    names = sorted(set(kinds) | set(ctx.presets))
    entries: list[tuple[str | None, str, Kind, Any, Node]] = []
    for el in node.elements():
        m = el.mapping()
        if len(m) != 1:
            raise el.fail(
                f"a mapping with exactly one invariant kind among {names}",
                "write e.g. '- latency: {op: get_item, p99_ms: 300}'",
            )
        name, params = next(iter(m.items()))
        if name not in kinds and name not in ctx.presets:
            raise el.fail(f"an invariant kind among {names}", f"unknown kind {name!r}")
        pnode = el.key(name)
        if params is None:
            pnode = Node({}, pnode.source, pnode.path)
        body = dict(pnode.mapping())
        given_id = None
        if "id" in body:
            given_id = pnode.key("id").str()
            del body["id"]
        if name in ctx.presets and name not in kinds:
            preset = ctx.presets[name]
            if preset.kind not in kinds:
                raise preset.node.fail(f"an invariant kind among {sorted(kinds)}", "preset")
            kind = kinds[preset.kind]
            merged = {**preset.params, **body}
            spec = kind.parse(Node(merged, pnode.source, pnode.path), ctx)
        else:
            kind = kinds[name]
            spec = kind.parse(Node(body, pnode.source, pnode.path), ctx)
        entries.append((given_id, name, kind, spec, el))
    if not entries:
        raise node.fail("a non-empty list of invariants (a check that cannot fail is a bug)")
    totals: dict[str, int] = {}
    for _, n, _, _, _ in entries:
        totals[n] = totals.get(n, 0) + 1
    seen: dict[str, int] = {}
    out: list[Invariant] = []
    ids: set[str] = set()
    for given, n, kind, spec, el in entries:
        seen[n] = seen.get(n, 0) + 1
        iid = given or (n if totals[n] == 1 else f"{n}#{seen[n]}")
        if iid in ids:
            raise el.fail("a unique invariant id", f"id {iid!r} is used twice")
        ids.add(iid)
        out.append(Invariant(iid, kind.name, spec, kind))
    return tuple(out)


def check_one(invariant: Invariant, history: Iterable[Op], final_state: FinalState) -> Verdict:
    """Check one invariant; a crash is an unknown verdict. The verdict carries the id."""
    kind = invariant.checker or KINDS.get(invariant.kind)
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
