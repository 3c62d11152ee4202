"""Reading an operations declaration (the schema is in `harness.operations`' docstring):
every template compiled, every value it reads declared, every operation it names known."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.errors import ConfigError
from harness.generators import Generator, fields_of, parse_generator
from harness.operations.model import (
    MAX_TIMEOUT,
    METHODS,
    READ_OUTCOMES,
    SPECIAL,
    WRITE_OUTCOMES,
    Capture,
    Followup,
    Mix,
    Operation,
    Operations,
    Outcomes,
)
from harness.templates import ITEM_NAME, Template, TemplateError, compile_json, compile_text
from harness.validate import Node
from harness.values import parse_duration, parse_fraction, parse_span

__all__ = ["parse_mix", "parse_operations"]

_OP_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_STATUS = re.compile(r"^([1-5])xx$|^(\d{3})-(\d{3})$")
_OP_KEYS = frozenset(
    {
        "method",
        "path",
        "headers",
        "body",
        "write",
        "timeout",
        "client",
        "key",
        "values",
        "capture",
        "requires",
        "keep",
        "outcomes",
        "followups",
    }
)
_TOP_KEYS = frozenset({"values", "operations", "mixes", "mix"})


def parse_operations(
    node: Node, base: Path | None = None, params: Mapping[str, Any] | None = None
) -> Operations:
    """A mapping of `values`, `operations`, `mixes` and `mix` (see the module docstring).

    `${param:NAME}` anywhere in it is replaced by the topology's parameter first; file
    generators are relative to `base`.
    """
    node.mapping()
    node.no_unknown_keys(_TOP_KEYS)
    node = Node(_with_params(node.value, params or {}, node), node.source, node.path)
    shared = {name: parse_generator(gn, name, base) for name, gn in node.key("values", {}).items()}
    ops_node = node.key("operations")
    if not ops_node.mapping():
        raise ops_node.fail("at least one operation")
    drafts = {name: _draft(name, on, shared, base) for name, on in ops_node.items()}
    ops = {name: _resolve(d, drafts, shared) for name, d in drafts.items()}
    for name, op in ops.items():
        for i, fu in enumerate(op.followups):
            _check_followup(ops_node.key(name).key("followups").child(None, i), op, fu, ops)
    mixes = {name: parse_mix(mn, tuple(ops)) for name, mn in node.key("mixes", {}).items()}
    default: Mix | None = None
    if node.has("mix"):
        mn = node.key("mix")
        default = (
            mixes[mn.choice(tuple(mixes))]
            if isinstance(mn.value, str)
            else parse_mix(mn, tuple(ops))
        )
    elif mixes:
        default = next(iter(mixes.values()))
    digest = hashlib.sha256(
        json.dumps(node.value, sort_keys=True, default=str).encode()
    ).hexdigest()[:12]
    return Operations(MappingProxyType(ops), MappingProxyType(mixes), default, node.source, digest)


def parse_mix(node: Node, ops: tuple[str, ...]) -> Mix:
    """`{op: share, ...}` over declared operations; at least one share > 0."""
    node.mapping()
    shares = []
    for name, sn in node.items():
        if name not in ops:
            raise ConfigError(
                sn.source, sn.path, name, f"a declared operation among {list(ops)}", "unknown op"
            )
        shares.append((name, sn.number(minimum=0)))
    if sum(s for _, s in shares) <= 0:
        raise node.fail("at least one operation with a share > 0")
    return Mix(tuple(shares))


def _with_params(value: Any, params: Mapping[str, Any], node: Node) -> Any:
    if isinstance(value, str) and "${param:" in value:
        whole = re.fullmatch(r"\$\{param:([A-Za-z_][A-Za-z0-9_]*)\}", value)
        if whole:
            if whole.group(1) not in params:
                raise node.fail(f"a parameter of the topology among {sorted(params)}", value)
            return params[whole.group(1)]

        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in params:
                raise node.fail(f"a parameter of the topology among {sorted(params)}", value)
            return str(params[m.group(1)])

        return re.sub(r"\$\{param:([A-Za-z_][A-Za-z0-9_]*)\}", sub, value)
    if isinstance(value, dict):
        return {k: _with_params(v, params, node) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_params(v, params, node) for v in value]
    return value


@dataclass
class _Draft:
    """An operation as written, before other operations' captures are known."""

    name: str
    node: Node
    method: str
    path: Template
    client: Template
    write: bool
    outcomes: Outcomes
    headers: tuple[tuple[str, Template], ...]
    body: Template | None
    timeout: float | None
    key: Template | None
    own: dict[str, Generator]
    captures: tuple[Capture, ...]
    requires: dict[str, str]
    keep: tuple[tuple[str, tuple[str | int, ...]], ...]
    followups: tuple[Followup, ...]

    def templates(self) -> Iterable[tuple[str, Template]]:
        yield "path", self.path
        yield "client", self.client
        for h, t in self.headers:
            yield f"headers.{h}", t
        if self.body is not None:
            yield "body", self.body
        if self.key is not None:
            yield "key", self.key


def _template(node: Node, *, json_body: bool = False, typed: bool = False) -> Template:
    if json_body:
        try:
            return compile_json(node.value, node.path)
        except TemplateError as exc:
            raise ConfigError(
                node.source,
                exc.where or node.path,
                exc.value,
                "a JSON body template: mappings with string keys, lists, strings with"
                " ${name} placeholders, numbers, true/false, null",
                str(exc).split(": ", 1)[-1],
            ) from None
    try:
        if isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return compile_text(str(node.value))
        return compile_text(node.str(), typed=typed)
    except TemplateError as exc:
        raise node.fail("a template with ${name} placeholders", str(exc)) from None


def _json_path(node: Node) -> tuple[str | int, ...]:
    text = node.str()
    if not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", text):
        raise node.fail("a JSON field path like 'token' or 'data.id'")
    return tuple(int(p) if p.isdigit() else p for p in text.split("."))


def _statuses(node: Node) -> frozenset[int]:
    out: set[int] = set()
    for el in node.elements():
        v = el.value
        if isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 599:
            out.add(v)
            continue
        m = _STATUS.match(v) if isinstance(v, str) else None
        if m is None:
            raise el.fail("an HTTP status (404), a class ('2xx') or a range ('500-504')")
        if m.group(1):
            first = int(m.group(1)) * 100
            out.update(range(first, first + 100))
        else:
            lo, hi = int(m.group(2)), int(m.group(3))
            if not 100 <= lo <= hi <= 599:
                raise el.fail("a range of HTTP statuses within 100-599")
            out.update(range(lo, hi + 1))
    return frozenset(out)


def _draft(name: str, node: Node, shared: Mapping[str, Generator], base: Path | None) -> _Draft:
    if not _OP_NAME.match(name):
        raise ConfigError(node.source, node.path, name, "an operation name like 'get_item'")
    node.mapping()
    node.no_unknown_keys(_OP_KEYS)
    method = node.key("method", "GET").choice(METHODS)
    path_node = node.key("path")
    if not isinstance(path_node.value, str) or not path_node.value.startswith("/"):
        raise path_node.fail("a path starting with '/', e.g. /v1/items/${id}")
    path = _template(path_node)
    write = (
        node.key("write").bool() if node.has("write") else method not in ("GET", "HEAD", "OPTIONS")
    )
    outcomes = WRITE_OUTCOMES if write else READ_OUTCOMES
    if node.has("outcomes"):
        on = node.key("outcomes")
        on.no_unknown_keys({"ok", "info"})
        ok = _statuses(on.key("ok")) if on.has("ok") else outcomes.ok
        info = _statuses(on.key("info")) if on.has("info") else outcomes.info
        if ok & info:
            raise on.fail("ok and info statuses that do not overlap", f"both: {sorted(ok & info)}")
        outcomes = Outcomes(ok, info)
    headers = []
    for h, hn in node.key("headers", {}).items():
        if not _HEADER.match(h) or h.lower() in ("host", "content-length"):
            raise ConfigError(hn.source, hn.path, h, "a header name (not Host or Content-Length)")
        headers.append((h, _template(hn)))
    body = _template(node.key("body"), json_body=True) if node.has("body") else None
    if body is not None and method in ("GET", "HEAD"):
        raise node.key("body").fail(f"no body on a {method} (use POST, PUT or PATCH)")
    timeout = (
        parse_duration(node.key("timeout"), positive=True, maximum=MAX_TIMEOUT)
        if node.has("timeout")
        else None
    )
    client = _template(node.key("client")) if node.has("client") else compile_text("${client}")
    key = _template(node.key("key")) if node.has("key") else None
    own = {}
    for vname, gn in node.key("values", {}).items():
        if vname in SPECIAL or vname == ITEM_NAME:
            raise ConfigError(
                gn.source, gn.path, vname, "a value name other than client, now, item"
            )
        own[vname] = parse_generator(gn, vname, base)
    captures = []
    for cname, cn in node.key("capture", {}).items():
        cn.no_unknown_keys({"json", "header", "key"})
        sources = [k for k in ("json", "header") if cn.has(k)]
        if len(sources) != 1:
            raise cn.fail("exactly one of json: FIELD or header: NAME")
        captures.append(
            Capture(
                cname,
                _json_path(cn.key("json")) if cn.has("json") else None,
                cn.key("header").str().lower() if cn.has("header") else None,
                _template(cn.key("key")) if cn.has("key") else compile_text("${client}"),
            )
        )
    requires = {}
    for vname, rn in node.key("requires", {}).items():
        requires[vname] = rn.str()
    keep = tuple((kn.str(), _json_path(kn)) for kn in node.key("keep", []).elements())
    followups = tuple(_followup(fn) for fn in node.key("followups", []).elements())
    return _Draft(
        name,
        node,
        method,
        path,
        client,
        write,
        outcomes,
        tuple(headers),
        body,
        timeout,
        key,
        own,
        tuple(captures),
        requires,
        keep,
        followups,
    )


def _followup(node: Node) -> Followup:
    node.no_unknown_keys({"op", "each", "where", "values", "count", "delay", "share"})
    values = {k: _template(vn, typed=True) for k, vn in node.key("values", {}).items()}
    return Followup(
        op=node.key("op").str(),
        values=MappingProxyType(values),
        each=node.key("each").str() if node.has("each") else None,
        where=MappingProxyType(dict(node.key("where", {}).mapping())),
        count=node.key("count", 1).int(minimum=0, maximum=100),
        delay=parse_span(node.key("delay")) if node.has("delay") else (0.0, 0.0),
        share=parse_fraction(node.key("share")) if node.has("share") else 1.0,
    )


def _needs(draft: _Draft) -> dict[str, str]:
    """Value names the draft's templates read -> where (for errors)."""
    out: dict[str, str] = {}
    for where, t in draft.templates():
        for n in t.names:
            out.setdefault(n, where)
    for c in draft.captures:
        for n in c.key.names:
            out.setdefault(n, f"capture.{c.name}.key")
    for i, fu in enumerate(draft.followups):
        if fu.each is not None:
            out.setdefault(fu.each, f"followups[{i}].each")
        for vname, t in fu.values.items():
            for n in t.names - {ITEM_NAME}:
                out.setdefault(n, f"followups[{i}].values.{vname}")
    return out


def _resolve(
    draft: _Draft, drafts: Mapping[str, _Draft], shared: Mapping[str, Generator]
) -> Operation:
    node = draft.node
    for vname, other in draft.requires.items():
        rn = node.key("requires").key(vname)
        if other not in drafts or other == draft.name:
            raise rn.fail(f"another declared operation among {sorted(set(drafts) - {draft.name})}")
        if vname not in {c.name for c in drafts[other].captures}:
            raise rn.fail(f"an operation that captures {vname!r}", f"{other} does not capture it")
    available = set(draft.own) | set(shared) | SPECIAL | set(draft.requires)
    needs = _needs(draft)
    for name, where in needs.items():
        if name not in available:
            captured_by = [d.name for d in drafts.values() if name in {c.name for c in d.captures}]
            hint = (
                f"{name!r} is captured by {captured_by}: add requires: {{{name}: {captured_by[0]}}}"
                if captured_by
                else f"values: {sorted(set(draft.own) | set(shared))}; special: {sorted(SPECIAL)}"
            )
            raise ConfigError(
                node.source, f"{node.path}.{where}", "${" + name + "}", "a declared value", hint
            )
    wanted = set(needs) - SPECIAL - set(draft.requires)
    # the values an operation required first reads must be drawn here too
    for other in draft.requires.values():
        wanted |= set(_needs(drafts[other])) - SPECIAL - set(drafts[other].requires)
    missing = [n for n in wanted if n not in draft.own and n not in shared]
    if missing:
        raise node.fail(
            "values for every operation it requires",
            f"{sorted(missing)} are neither this operation's values nor shared ones",
        )
    draws = tuple(n for n in shared if n in wanted) + tuple(n for n in draft.own if n in wanted)
    generators = {n: draft.own.get(n) or shared[n] for n in draws}
    for i, fu in enumerate(draft.followups):
        if fu.each is not None:
            gen = generators.get(fu.each)
            if gen is None or gen.kind != "list":
                raise (
                    node.key("followups")
                    .child(None, i)
                    .fail(f"each: a list value of {draft.name}", f"{fu.each!r} is not a list value")
                )
            for where_key in fu.where:
                if fields_of(gen) and where_key not in fields_of(gen):
                    raise (
                        node.key("followups")
                        .child(None, i)
                        .fail(f"where: fields of {fu.each}'s items among {sorted(fields_of(gen))}")
                    )
    return Operation(
        name=draft.name,
        method=draft.method,
        path=draft.path,
        client=draft.client,
        write=draft.write,
        outcomes=draft.outcomes,
        headers=draft.headers,
        body=draft.body,
        timeout=draft.timeout,
        key=draft.key,
        draws=draws,
        generators=MappingProxyType(generators),
        captures=draft.captures,
        requires=MappingProxyType(dict(draft.requires)),
        keep=draft.keep,
        followups=draft.followups,
    )


def _check_followup(node: Node, op: Operation, fu: Followup, ops: Mapping[str, Operation]) -> None:
    if fu.op not in ops:
        raise node.fail(f"op: a declared operation among {list(ops)}", f"unknown op {fu.op!r}")
    target = ops[fu.op]
    for vname in fu.values:
        if vname not in target.draws:
            raise node.fail(
                f"values: values {fu.op} draws, among {list(target.draws)}", f"{vname!r} is not one"
            )
    for vname, t in fu.values.items():
        if ITEM_NAME in t.names and fu.each is None:
            raise node.fail(f"each: a list value (values.{vname} reads ${{item...}})")
