"""The system's state after a run: settling before the final reads, and the reads themselves.

Both are declared in the topology file, so data invariants (`acknowledged_writes`) work
on any system::

    settle:                              # wait until every member of a group says it is idle
      http: /readyz                      # a path on each component of `component`, direct
      component: app
      until: {json: spool_backlog_bytes, equals: 0}   # or {status: 200}
      timeout: 20s
    state:                               # named final-state readers
      scans:                             # SQL on a component, or through a link's proxy
        sql: "SELECT scan_id, person_id FROM scans WHERE scan_id LIKE %(tag)s || '-%%'"
        via: app->postgres               # (a proxy follows a failover), or component: postgres
        user: postgres                   # default postgres; database: postgres
      records:                           # HTTP: one GET per key, through the client edge
        http: {get: "/v1/records/${key}", json: data}
      listing:                           # HTTP: one listing
        http: {list: "/v1/records?_limit=10000", items: data}
      custom:
        python: mymodule:read_records    # function(system, tag, keys) -> iterable of mappings

A reader returns rows (mappings). `%(tag)s` in SQL is the run's tag, with which every
`sequence` value of the run begins; `${key}` in a GET is one key of the writes the
invariant judges (every write attempted, acknowledged or not). A reader that fails
returns a `Reading` with its `error`, never raises: the invariant is then unknown.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.templates import Template, TemplateError, compile_text, lookup
from harness.validate import Node
from harness.values import parse_duration

__all__ = [
    "Reading",
    "Settle",
    "StateReader",
    "load_function",
    "parse_settle",
    "parse_state",
    "read",
    "settle",
]

READ_TIMEOUT = 10.0  # seconds a reader keeps trying to reach its source
MAX_ROWS = 1_000_000


@dataclass(frozen=True)
class Reading:
    """What one reader found: rows, or the error that kept it from reading."""

    name: str
    rows: tuple[Mapping[str, Any], ...] | None
    error: str | None = None
    source: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class StateReader:
    """One declared reader (see the module docstring)."""

    name: str
    kind: Literal["sql", "http_get", "http_list", "python"]
    query: str = ""
    via: str | None = None
    component: str | None = None
    user: str = "postgres"
    database: str = "postgres"
    get: Template | None = None
    path: str = ""
    json: tuple[str | int, ...] = ()
    function: str = ""


@dataclass(frozen=True)
class Settle:
    """Wait until each component of `component` answers `path` as `until` says."""

    component: str
    path: str
    json: tuple[str | int, ...] | None = None
    equals: Any = None
    status: int | None = 200  # None: any status (the JSON field decides)
    timeout: float = 20.0


def _json_path(node: Node) -> tuple[str | int, ...]:
    text = node.str()
    return tuple(int(p) if p.isdigit() else p for p in text.split("."))


def parse_settle(node: Node) -> Settle:
    node.no_unknown_keys({"http", "component", "until", "timeout"})
    path = node.key("http").str()
    if not path.startswith("/"):
        raise node.key("http").fail("a path starting with '/'")
    until = node.key("until", {"status": 200})
    until.no_unknown_keys({"json", "equals", "status"})
    return Settle(
        component=node.key("component").str(),
        path=path,
        json=_json_path(until.key("json")) if until.has("json") else None,
        equals=until.key("equals").value if until.has("equals") else None,
        status=until.key("status").int(minimum=100, maximum=599)
        if until.has("status")
        else (None if until.has("json") else 200),
        timeout=parse_duration(node.key("timeout"), positive=True, maximum=600)
        if node.has("timeout")
        else 20.0,
    )


def parse_state(node: Node) -> dict[str, StateReader]:
    out = {}
    for name, rn in node.items():
        rn.mapping()
        kinds = [k for k in ("sql", "http", "python") if rn.has(k)]
        if len(kinds) != 1:
            raise rn.fail("exactly one of sql:, http: or python:")
        kind = kinds[0]
        if kind == "sql":
            rn.no_unknown_keys({"sql", "via", "component", "user", "database"})
            if rn.has("via") == rn.has("component"):
                raise rn.fail("exactly one of via: LINK or component: NAME for the SQL")
            out[name] = StateReader(
                name,
                "sql",
                query=rn.key("sql").str(),
                via=rn.key("via").str() if rn.has("via") else None,
                component=rn.key("component").str() if rn.has("component") else None,
                user=rn.key("user", "postgres").str(),
                database=rn.key("database", "postgres").str(),
            )
        elif kind == "http":
            rn.no_unknown_keys({"http", "component"})
            hn = rn.key("http")
            hn.no_unknown_keys({"get", "list", "json", "items"})
            component = rn.key("component").str() if rn.has("component") else None
            if hn.has("get") == hn.has("list"):
                raise hn.fail("exactly one of get: PATH_WITH_${key} or list: PATH")
            if hn.has("get"):
                try:
                    get = compile_text(hn.key("get").str())
                except TemplateError as exc:
                    raise hn.key("get").fail("a path template", str(exc)) from None
                if get.names != {"key"}:
                    raise hn.key("get").fail("a path with ${key} (and no other placeholder)")
                jpath = _json_path(hn.key("json")) if hn.has("json") else ()
                out[name] = StateReader(name, "http_get", get=get, component=component, json=jpath)
            else:
                jpath = _json_path(hn.key("items")) if hn.has("items") else ()
                path = hn.key("list").str()
                out[name] = StateReader(
                    name, "http_list", path=path, component=component, json=jpath
                )
        else:
            rn.no_unknown_keys({"python"})
            fn = rn.key("python")
            spec = fn.str()
            if ":" not in spec:
                raise fn.fail("module:function, e.g. myapp.checks:read_orders")
            out[name] = StateReader(name, "python", function=spec)
    return out


def load_function(spec: str, root: Path | None, where: Node | None = None) -> Callable[..., Any]:
    """`module:attribute`, importable from the project or from `root` (the topology's folder)."""
    module_name, _, attr = spec.partition(":")
    added = False
    if root is not None and str(root) not in sys.path:
        sys.path.insert(0, str(root))
        added = True
    try:
        module = importlib.import_module(module_name)
        target = module
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        if where is not None:
            raise where.fail(
                "module:attribute that can be imported", f"{type(exc).__name__}: {exc}"
            ) from None
        raise
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(str(root))
    if not callable(target):
        message = f"{spec} is a {type(target).__name__}, not callable"
        if where is not None:
            raise where.fail("module:attribute naming a function or class", message)
        raise TypeError(message)
    return target


# --------------------------------------------------------------------------- at run time


def _component_urls(system: Any, group: str) -> list[tuple[str, str]]:
    comps = system.endpoints.components
    named = [c for c in comps.values() if c.name == group] or [
        c for c in comps.values() if c.group == group
    ]
    return [(c.name, f"http://{c.host}:{c.port}") for c in named]


def _get(url: str, timeout: float) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def settle(system: Any, spec: Settle, *, sleep: Callable[[float], None] = time.sleep) -> str | None:
    """Wait until every component answers as `spec` says; None when it did, else why not.

    An answer of 2xx without the JSON field `spec` waits for ends the wait at once: the
    component does not report it, so waiting out the timeout could not help."""
    deadline = time.monotonic() + spec.timeout
    urls = _component_urls(system, spec.component)
    if not urls:
        return f"settle: no component {spec.component!r} is running"
    pending: dict[str, str] = {}
    while True:
        pending.clear()
        for name, base in urls:
            try:
                status, body = _get(base + spec.path, 1.0)
            except (OSError, ValueError) as exc:
                pending[name] = f"unreachable ({type(exc).__name__}: {exc})"
                continue
            if spec.status is not None and status != spec.status:
                pending[name] = f"answered {status}"
            elif spec.json is not None:
                field = ".".join(map(str, spec.json))
                try:
                    value = lookup({"": json.loads(body or b"null")}, "", spec.json)
                except (ValueError, KeyError, IndexError, TypeError):
                    if 200 <= status < 300:  # a field it never reports: waiting cannot help
                        snippet = body[:120].decode(errors="replace")
                        return (
                            f"settle: {name} answered GET {spec.path} {status} without the"
                            f" field {field} that settle waits for (answer: {snippet})"
                        )
                    pending[name] = f"answered {status} without {field}"
                    continue
                if value != spec.equals:
                    pending[name] = f"reports {field}={value!r}"
        if not pending:
            return None
        if time.monotonic() >= deadline:
            return f"not settled after {spec.timeout:g} s: " + "; ".join(
                f"{n} {why}" for n, why in sorted(pending.items())
            )
        sleep(0.2)


def read(
    system: Any,
    reader: StateReader,
    tag: str,
    keys: Sequence[str] = (),
    root: Path | None = None,
) -> Reading:
    """Run one reader against a running system (see the module docstring)."""
    started = time.monotonic()
    try:
        rows, source = _READERS[reader.kind](system, reader, tag, keys, root)
    except Exception as exc:  # a reader that fails makes its invariant unknown, not a crash
        return Reading(
            reader.name, None, f"{type(exc).__name__}: {exc}", seconds=time.monotonic() - started
        )
    return Reading(reader.name, rows, None, source, round(time.monotonic() - started, 3))


def _sql(
    system: Any, r: StateReader, tag: str, keys: Sequence[str], root: Path | None
) -> tuple[tuple[Mapping[str, Any], ...], str]:
    import psycopg
    from psycopg.rows import dict_row

    if r.via is not None:
        links = [
            lk
            for lk in system.endpoints.links.values()
            if lk.name == r.via or _group_link(system, lk, r.via)
        ]
        if not links:
            raise LookupError(f"no link {r.via!r}; links: {sorted(system.endpoints.links)}")
        host, port = links[0].listen.rsplit(":", 1)
        source = f"{links[0].name} ({links[0].listen})"
        target = system.endpoints.components.get(links[0].target)
        password = None if target is None else target.password
    else:
        comp = system.endpoints.components[r.component]
        host, port = comp.host, str(comp.port)
        source = f"{r.component} ({host}:{port})"
        password = comp.password
    deadline = time.monotonic() + READ_TIMEOUT
    while True:
        try:
            with psycopg.connect(
                host=host,
                port=int(port),
                user=r.user,
                password=password,
                dbname=r.database,
                connect_timeout=3,
                row_factory=dict_row,
            ) as conn:
                cur = conn.execute(r.query, {"tag": tag})
                rows = cur.fetchmany(MAX_ROWS + 1)
                if len(rows) > MAX_ROWS:
                    raise ValueError(f"more than {MAX_ROWS:,} rows")
                return tuple(rows), source
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _group_link(system: Any, link: Any, spec: str) -> bool:
    if "->" not in spec:
        return False
    src, dst = spec.split("->", 1)
    comps = system.endpoints.components
    src_ok = link.source == src or (link.source in comps and comps[link.source].group == src)
    dst_ok = link.target == dst or (link.target in comps and comps[link.target].group == dst)
    return src_ok and dst_ok


def _base_url(system: Any, r: StateReader) -> str:
    if r.component is None:
        return system.endpoints.gateways[0]
    urls = _component_urls(system, r.component)
    if not urls:
        raise LookupError(f"no component {r.component!r}")
    return urls[0][1]


def _http_get(
    system: Any, r: StateReader, tag: str, keys: Sequence[str], root: Path | None
) -> tuple[tuple[Mapping[str, Any], ...], str]:
    assert r.get is not None
    get = r.get
    base = _base_url(system, r)

    def one(key: str) -> Mapping[str, Any] | None:
        url = base + str(get.render({"key": key}))
        deadline = time.monotonic() + READ_TIMEOUT
        while True:
            try:
                status, body = _get(url, 3.0)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
                continue
            if status == 404:
                return None
            if status != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"GET {url} answered {status}")
                time.sleep(0.2)
                continue
            value = lookup({"": json.loads(body or b"null")}, "", r.json)
            return {"key": key, **(value if isinstance(value, dict) else {"value": value})}

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        found = [row for row in pool.map(one, keys) if row is not None]
    return tuple(found), f"GET {base}{r.get.source}"


def _http_list(
    system: Any, r: StateReader, tag: str, keys: Sequence[str], root: Path | None
) -> tuple[tuple[Mapping[str, Any], ...], str]:
    url = _base_url(system, r) + r.path
    status, body = _get(url, READ_TIMEOUT)
    if status != 200:
        raise RuntimeError(f"GET {url} answered {status}")
    items = lookup({"": json.loads(body or b"null")}, "", r.json)
    if not isinstance(items, list):
        raise ValueError(f"GET {url}: {'.'.join(map(str, r.json)) or 'the answer'} is not a list")
    return tuple(i if isinstance(i, dict) else {"value": i} for i in items), f"GET {url}"


def _python(
    system: Any, r: StateReader, tag: str, keys: Sequence[str], root: Path | None
) -> tuple[tuple[Mapping[str, Any], ...], str]:
    fn = load_function(r.function, root)
    rows: Iterable[Mapping[str, Any]] = fn(system, tag, list(keys))
    return tuple(dict(row) for row in rows), r.function


_READERS: dict[str, Callable[..., tuple[tuple[Mapping[str, Any], ...], str]]] = {
    "sql": _sql,
    "http_get": _http_get,
    "http_list": _http_list,
    "python": _python,
}
