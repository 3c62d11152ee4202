"""Templates: `${name}` placeholders in the requests an operation declares, compiled once.

A placeholder names a value (`${person}`), a field of one (`${item.person_id}`,
`${results.0.sample_id}`) or a special value (`${client}`, `${now}`). A string that is
exactly one placeholder renders as the value itself, typed (a JSON body gets the number
42, not "42"); anything else renders as text. A JSON body template may build a list
from a list value: `{$each: results, $item: {sample_id: "${item.sample_id}"}}`.

    t = compile_text("/v1/code/${person}")
    t.render({"person": 42})                                   # '/v1/code/42'
    body = compile_json({"id": "${person}", "at": "${now}"}, "body")
    body.render({"person": 42, "now": "2026-01-01T00:00:00Z"}) # {'id': 42, 'at': '...'}
    body.names                                                 # frozenset({'person', 'now'})

Templates are compiled to closures: rendering one costs a few dictionary lookups. A JSON
body can also be compiled straight to its bytes (`json_encoder`): the constant parts are
serialized once and only the placeholders per request, the same bytes as
`orjson.dumps(body.render(env))` without building the tree first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "EACH",
    "ITEM",
    "Template",
    "TemplateError",
    "compile_json",
    "compile_text",
    "json_encoder",
    "lookup",
]

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_-]+)*)\}")
EACH, ITEM = "$each", "$item"
ITEM_NAME = "item"

Env = Mapping[str, Any]
Render = Callable[[Env], Any]


class TemplateError(ValueError):
    """A template that cannot be compiled; the message says what is wrong, `where` the
    key path of the part at fault (JSON templates) and `value` that part."""

    def __init__(self, message: str, where: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.where, self.value = where, value


def lookup(env: Env, name: str, path: tuple[str | int, ...]) -> Any:
    """`env[name]`, then each step of `path` (a key, or an index into a list)."""
    value = env[name]
    for step in path:
        value = value[step]
    return value


def _path(text: str) -> tuple[str | int, ...]:
    return tuple(int(p) if p.isdigit() else p for p in text.split(".")[1:]) if text else ()


@dataclass(frozen=True)
class Template:
    """A compiled template: `render(env)` and the value names it reads."""

    source: Any
    names: frozenset[str]
    render: Render

    @property
    def constant(self) -> bool:
        return not self.names


def compile_text(text: str, *, typed: bool = False) -> Template:
    """A string template; with `typed`, a lone placeholder renders as the value itself."""
    if not isinstance(text, str):
        raise TemplateError(f"expected a string template, got {text!r}")
    parts: list[str | tuple[str, tuple[str | int, ...]]] = []
    names: set[str] = set()
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        ref = (m.group(1), _path(m.group(2)))
        parts.append(ref)
        names.add(ref[0])
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    if "${" in "".join(p for p in parts if isinstance(p, str)):
        raise TemplateError(f"{text!r}: a placeholder is ${{name}} or ${{name.field}}")
    render: Render
    if not names:
        render = _const(text)
    elif len(parts) == 1 and not isinstance(parts[0], str):
        name, path = parts[0]
        if path:
            render = (
                (lambda env: lookup(env, name, path))
                if typed
                else (lambda env: _text(lookup(env, name, path)))
            )
        else:
            render = (lambda env: env[name]) if typed else (lambda env: _text(env[name]))
    else:
        steps = tuple(parts)

        def render(env: Env) -> str:
            return "".join(
                p if isinstance(p, str) else _text(lookup(env, p[0], p[1])) for p in steps
            )

    return Template(text, frozenset(names), render)


def _const(value: Any) -> Render:
    return lambda _env: value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def compile_json(value: Any, where: str) -> Template:
    """A JSON body template: mappings, lists, scalars, string templates and `$each` lists."""
    render, names = _compile(value, where)
    return Template(value, frozenset(names), render)


def _compile(value: Any, where: str) -> tuple[Render, set[str]]:
    if isinstance(value, str):
        try:
            t = compile_text(value, typed=True)
        except TemplateError as exc:
            raise TemplateError(str(exc), where, value) from None
        return t.render, set(t.names)
    if isinstance(value, bool | int | float) or value is None:
        return _const(value), set()
    if isinstance(value, list):
        compiled = [_compile(v, f"{where}[{i}]") for i, v in enumerate(value)]
        renders = tuple(r for r, _ in compiled)
        return (lambda env: [r(env) for r in renders]), set().union(*(n for _, n in compiled))
    if isinstance(value, dict):
        if EACH in value or ITEM in value:
            return _compile_each(value, where)
        for k in value:
            if not isinstance(k, str):
                raise TemplateError(f"{where}: keys must be strings, got {k!r}", where, k)
        compiled_items = [(k, *_compile(v, f"{where}.{k}")) for k, v in value.items()]
        pairs = tuple((k, r) for k, r, _ in compiled_items)
        names = set().union(*(n for _, _, n in compiled_items)) if compiled_items else set()
        return (lambda env: {k: r(env) for k, r in pairs}), names
    raise TemplateError(
        f"{where}: a JSON value, got {type(value).__name__} {value!r}"
        " (a YAML date or binary is not JSON: quote it)",
        where,
        value,
    )


def _compile_each(value: dict[str, Any], where: str) -> tuple[Render, set[str]]:
    if set(value) != {EACH, ITEM}:
        raise TemplateError(
            f"{where}: a list template is exactly {{{EACH}: LIST_VALUE, {ITEM}: TEMPLATE}},"
            f" got keys {sorted(value)}"
        )
    source = value[EACH]
    m = _PLACEHOLDER.fullmatch(source) if isinstance(source, str) else None
    if isinstance(source, str) and m is None and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", source):
        m = _PLACEHOLDER.fullmatch("${" + source + "}")
    if m is None:
        raise TemplateError(f"{where}.{EACH}: the name of a list value, got {source!r}")
    name, path = m.group(1), _path(m.group(2))
    item, item_names = _compile(value[ITEM], f"{where}.{ITEM}")

    def render(env: Env) -> list[Any]:
        scope = dict(env)
        out = []
        for element in lookup(env, name, path):
            scope[ITEM_NAME] = element
            out.append(item(scope))
        return out

    return render, {name} | (item_names - {ITEM_NAME})


def json_encoder(body: Template) -> Callable[[Env], bytes]:
    """`body` (from `compile_json`) as a function of the values to its compact JSON bytes."""
    parts: list[bytes | Render] = []
    _encode(body.source, parts)
    merged: list[bytes | Render] = []
    for part in parts:
        if isinstance(part, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += part
        else:
            merged.append(part)
    if len(merged) == 1 and isinstance(merged[0], bytes):
        constant = merged[0]
        return lambda _env: constant
    steps = tuple(merged)
    dumps = orjson.dumps

    def encode(env: Env) -> bytes:
        return b"".join(p if isinstance(p, bytes) else dumps(p(env)) for p in steps)

    return encode


def _encode(value: Any, out: list[bytes | Render]) -> None:
    """Append `value`'s JSON as constant bytes and renders whose value is dumped."""
    if isinstance(value, dict) and not (EACH in value or ITEM in value):
        out.append(b"{")
        for i, (k, v) in enumerate(value.items()):
            out.append((b"," if i else b"") + orjson.dumps(k) + b":")
            _encode(v, out)
        out.append(b"}")
    elif isinstance(value, list):
        out.append(b"[")
        for i, v in enumerate(value):
            if i:
                out.append(b",")
            _encode(v, out)
        out.append(b"]")
    else:
        render, names = _compile(value, "body")
        out.append(orjson.dumps(render({})) if not names else render)
