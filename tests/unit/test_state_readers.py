"""Final-state readers over HTTP (one GET per key, one listing) and in Python, and the
settle wait, against a small in-process HTTP server (no system started); what they read
feeds `acknowledged_writes` as SQL does."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from harness import state
from harness.domain import DataDomain
from harness.invariants import Context, FinalState, check_all, parse_invariants
from harness.state import Settle, StateReader, parse_state, read, settle
from harness.validate import Node
from tests.support import op, operations

STORE = {"a": {"id": "a", "n": 1}, "b": {"id": "b", "n": 2}}


class _Handler(BaseHTTPRequestHandler):
    answers: ClassVar[dict[str, tuple[int, Any]]] = {}

    def do_GET(self) -> None:
        path = self.path
        if path in self.answers:
            status, body = self.answers[path]
        elif path.startswith("/items/") and path[7:] in STORE:
            status, body = 200, {"data": STORE[path[7:]]}
        elif path.startswith("/items/"):
            status, body = 404, {"error": "not found"}
        elif path == "/items":
            status, body = 200, {"data": list(STORE.values())}
        else:
            status, body = 404, {}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def system() -> Iterator[Any]:
    _Handler.answers = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    comp = SimpleNamespace(name="api-1", group="api", host=host, port=port)
    yield SimpleNamespace(
        endpoints=SimpleNamespace(
            gateways=(f"http://{host}:{port}",), components={"api-1": comp}, links={}
        )
    )
    server.shutdown()
    server.server_close()


def readers(spec: dict[str, Any]) -> dict[str, StateReader]:
    return parse_state(Node(spec, "topology.yaml", "state"))


def test_an_http_get_per_key_returns_the_found_rows_and_skips_404s(system: Any) -> None:
    r = readers({"items": {"http": {"get": "/items/${key}", "json": "data"}}})["items"]
    reading = read(system, r, "tag", ["a", "b", "zz"])
    assert reading.error is None, reading.error
    assert sorted(row["key"] for row in reading.rows or ()) == ["a", "b"]
    assert {row["n"] for row in reading.rows or ()} == {1, 2}
    assert reading.source.startswith("GET http://127.0.0.1:")


def test_an_http_get_that_keeps_failing_is_an_error_not_an_exception(
    system: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state, "READ_TIMEOUT", 0.3)
    _Handler.answers["/items/a"] = (500, {"error": "boom"})
    r = readers({"items": {"http": {"get": "/items/${key}"}, "component": "api"}})["items"]
    reading = read(system, r, "tag", ["a"])
    assert reading.rows is None and "answered 500" in (reading.error or ""), reading


def test_an_http_listing_reads_items_from_a_component(system: Any) -> None:
    r = readers({"all": {"http": {"list": "/items", "items": "data"}, "component": "api"}})["all"]
    reading = read(system, r, "tag")
    assert [row["id"] for row in reading.rows or ()] == ["a", "b"], reading


def test_an_http_listing_that_is_not_a_list_is_an_error(system: Any) -> None:
    r = readers({"all": {"http": {"list": "/items", "items": "data.0"}}})["all"]
    reading = read(system, r, "tag")
    assert reading.rows is None and "is not a list" in (reading.error or ""), reading


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"http": {"get": "/items/${id}"}}, "a path with ${key}"),
        ({"http": {"get": "/items/${key}", "list": "/items"}}, "exactly one of get"),
        ({"python": "nomodule"}, "module:function"),
        ({"sql": "SELECT 1"}, "exactly one of via: LINK or component: NAME"),
        ({"sql": "SELECT 1", "http": {"list": "/x"}}, "exactly one of sql:, http: or python:"),
    ],
)
def test_a_bad_reader_is_a_load_time_error(spec: dict[str, Any], expected: str) -> None:
    with pytest.raises(Exception, match=expected.replace("$", r"\$").replace("{", r"\{")):
        readers({"r": spec})


PYTHON_READER = """
def read_items(system, tag, keys):
    base = system.endpoints.gateways[0]
    return [{"id": k, "tag": tag} for k in keys if k != "skip"]

def broken(system, tag, keys):
    raise RuntimeError("the store is gone")
"""


def test_a_python_reader_is_imported_from_the_topologys_folder(system: Any, tmp_path: Path) -> None:
    name = f"reader_{uuid.uuid4().hex[:12]}"
    (tmp_path / f"{name}.py").write_text(PYTHON_READER)
    rs = readers({"mine": {"python": f"{name}:read_items"}, "bad": {"python": f"{name}:broken"}})
    reading = read(system, rs["mine"], "t1", ["x", "skip"], root=tmp_path)
    assert reading.rows == ({"id": "x", "tag": "t1"},) and reading.source == f"{name}:read_items"
    failed = read(system, rs["bad"], "t1", ["x"], root=tmp_path)
    assert failed.rows is None and "RuntimeError: the store is gone" in (failed.error or "")


def test_what_an_http_reader_finds_decides_acknowledged_writes(system: Any) -> None:
    ops = operations(
        {
            "operations": {
                "put_item": {
                    "method": "PUT",
                    "path": "/items/${id}",
                    "key": "${id}",
                    "values": {"id": {"uuid": True}},
                }
            }
        }
    )
    rs = readers({"items": {"http": {"get": "/items/${key}", "json": "data"}}})
    ctx = Context(phases=None, operations=ops, slo_op=None, state=tuple(rs), presets={})
    node = Node([{"acknowledged_writes": {"op": "put_item", "state": "items"}}], "e.yaml", "inv")
    (inv,) = parse_invariants(node, ctx)
    history = [
        op(1, "put_item", args={"id": "a"}),
        op(2, "put_item", args={"id": "c"}),  # acknowledged, never stored
        op(3, "put_item", args={"id": "d"}, outcome="info", status=None),
    ]
    wanted = inv.wants(history)
    assert dict(wanted) == {"items": ("a", "c", "d")}
    data = DataDomain(state=rs).read_state(system, "tag", wanted)
    (verdict,) = check_all((inv,), history, FinalState(data=data))
    assert verdict.valid is False and "lost: c" in verdict.evidence, str(verdict)
    assert verdict.figures["lost"] == 1 and verdict.figures["unknown_absent"] == 1


@pytest.mark.parametrize(
    ("spec", "missing"),
    [
        ({"field": "idd"}, "'idd' that `field:`"),
        ({"field": "id", "match": {"titel": "${id}"}}, "'titel' that `match:`"),
    ],
)
def test_rows_without_the_named_field_are_unknown_not_every_write_lost(
    spec: dict[str, Any], missing: str
) -> None:
    ops = operations(
        {
            "operations": {
                "put_item": {
                    "method": "PUT",
                    "path": "/items/${id}",
                    "key": "${id}",
                    "values": {"id": {"uuid": True}},
                }
            }
        }
    )
    rs = readers({"items": {"sql": "SELECT id, title FROM items", "component": "db"}})
    ctx = Context(phases=None, operations=ops, slo_op=None, state=tuple(rs), presets={})
    entry = {"acknowledged_writes": {"op": "put_item", "state": "items", **spec}}
    (inv,) = parse_invariants(Node([entry], "e.yaml", "inv"), ctx)
    history = [op(1, "put_item", args={"id": "a"}), op(2, "put_item", args={"id": "b"})]
    rows = ({"id": "a", "title": "x"}, {"id": "b", "title": "y"})
    final = FinalState(data={"items": state.Reading("items", rows)})
    (verdict,) = check_all((inv,), history, final)
    assert verdict.valid is None and missing in verdict.message, str(verdict)
    assert "['id', 'title']" in verdict.message
    entry["acknowledged_writes"] = {"op": "put_item", "state": "items", "field": "id"}
    (good,) = parse_invariants(Node([entry], "e.yaml", "inv"), ctx)
    (verdict,) = check_all((good,), history, final)
    assert verdict.valid is True, str(verdict)


# --------------------------------------------------------------------------- settle


def test_settle_returns_at_once_when_the_answer_lacks_the_field(system: Any) -> None:
    _Handler.answers["/idle"] = (200, {"ready": True})
    started = time.monotonic()
    why = settle(system, Settle("api", "/idle", json=("backlog",), equals=0, status=None))
    assert time.monotonic() - started < 2.0
    assert why is not None and "without the field backlog" in why and "api-1" in why, why


def test_settle_waits_until_the_field_says_so(system: Any) -> None:
    _Handler.answers["/idle"] = (200, {"backlog": 3})

    def drain(_seconds: float) -> None:
        _Handler.answers["/idle"] = (200, {"backlog": 0})

    assert settle(system, Settle("api", "/idle", json=("backlog",), equals=0), sleep=drain) is None


def test_settle_keeps_waiting_on_an_error_answer_without_the_field(system: Any) -> None:
    _Handler.answers["/idle"] = (503, {"error": "starting"})
    spec = Settle("api", "/idle", json=("backlog",), equals=0, status=None, timeout=0.3)
    why = settle(system, spec)
    assert why is not None and why.startswith("not settled after 0.3 s") and "503" in why, why
