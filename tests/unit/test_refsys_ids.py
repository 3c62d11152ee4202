"""Ids at the API: person_id and venue_id are 1..2^31-1, scan and sample ids 1..64
characters of a small ASCII set; anything else is a JSON 400 naming the field, never a
5xx, whatever the body or path."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_system.addresses import Endpoint
from reference_system.app import Service
from reference_system.database import Unavailable
from reference_system.settings import load
from reference_system.validation import (
    MAX_ID,
    BadInput,
    parse_person_id,
    parse_results,
    parse_scan,
)

SCAN = {
    "scan_id": "s-1",
    "person_id": 5,
    "venue_id": 9,
    "token": "a.b",
    "at": "2022-01-04T09:00:00Z",
}


def body(obj: object) -> bytes:
    return orjson.dumps(obj)


@pytest.mark.parametrize(
    "scan_id",
    [
        "has space",
        "tab\there",
        "slash/inside",
        "back\\slash",
        'quote"',
        "nul\x00",
        "newline\n",
        "é",
        "١٢٣",  # Arabic-Indic digits
        "emoji-\U0001f600",
        "full-width-ａ",
        "x" * 65,
        "%00",
        "<script>",
        "a;drop table scans",
    ],
)
def test_scan_id_outside_the_charset_or_length_is_400(scan_id: str) -> None:
    with pytest.raises(BadInput) as err:
        parse_scan(body({**SCAN, "scan_id": scan_id}))
    assert err.value.status == 400 and err.value.field == "scan_id"


@pytest.mark.parametrize(
    "scan_id", ["a", "x" * 64, "scan-0f3a", "20221202-1830-hardened:s1", "A.b_c-9"]
)
def test_scan_ids_in_the_charset_pass(scan_id: str) -> None:
    assert parse_scan(body({**SCAN, "scan_id": scan_id})).scan_id == scan_id


def test_sample_id_has_the_same_rules() -> None:
    item = {"sample_id": "ok-1", "person_id": 1, "result": "negative", "at": SCAN["at"]}
    assert parse_results(body({"results": [item]}), 10)[0].sample_id == "ok-1"
    with pytest.raises(BadInput) as err:
        parse_results(body({"results": [{**item, "sample_id": "no space"}]}), 10)
    assert err.value.field == "results[0].sample_id"


@pytest.mark.parametrize("field", ["person_id", "venue_id"])
@pytest.mark.parametrize(
    "value", [0, -1, MAX_ID + 1, 2**63 - 1, -(2**63), 1.0, 1e3, "1", True, None, [1], {"a": 1}]
)
def test_int_ids_out_of_range_or_type_are_400(field: str, value: Any) -> None:
    with pytest.raises(BadInput) as err:
        parse_scan(body({**SCAN, field: value}))
    assert err.value.status == 400 and err.value.field == field
    assert len(err.value.message) < 200  # a huge value is not echoed back whole


@pytest.mark.parametrize(
    "text", ["0001", "01", "+1", " 1", "1 ", "1\n", "١", "2147483648", "4294967297", "-0", "0x10"]
)
def test_non_canonical_or_out_of_range_path_ids_are_400(text: str) -> None:
    with pytest.raises(BadInput) as err:
        parse_person_id(text)
    assert err.value.status == 400 and err.value.field == "person_id"


def test_path_id_bounds() -> None:
    assert parse_person_id("1") == 1 and parse_person_id(str(MAX_ID)) == MAX_ID


def test_a_huge_string_is_not_echoed_back() -> None:
    with pytest.raises(BadInput) as err:
        parse_scan(body({**SCAN, "at": "x" * 100_000}))
    assert len(err.value.message) < 300


# -- property: any JSON body is either a well-formed request or a 4xx BadInput

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _good_or_4xx(fn: Any, raw: bytes) -> Any:
    try:
        return fn(raw)
    except BadInput as exc:
        assert 400 <= exc.status < 500
        orjson.dumps(exc.body())  # the error itself is serialisable
        return None


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "scan_id": json_values | st.text(alphabet="abc-_.:/ é\x00", max_size=70),
            "person_id": json_values,
            "venue_id": json_values,
            "token": json_values,
            "at": json_values | st.sampled_from(["2022-01-04T09:00:00Z", "2022-01-04T09:00:00"]),
            "extra": json_values,
        },
    )
)
def test_any_scan_body_is_a_valid_request_or_a_400(obj: dict[str, Any]) -> None:
    req = _good_or_4xx(parse_scan, body(obj))
    if req is not None:
        assert 1 <= req.person_id <= MAX_ID and 1 <= req.venue_id <= MAX_ID
        assert 1 <= len(req.scan_id) <= 64 and req.scan_id.isascii()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_are_a_valid_request_or_a_400(raw: bytes) -> None:
    _good_or_4xx(parse_scan, raw)
    _good_or_4xx(lambda b: parse_results(b, 10), raw)


# -- at the ASGI boundary: never a 5xx for a bad path or body


class _NoDeps:
    """A database that holds no one; any write is refused as unavailable."""

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        raise Unavailable("database down (test)")

    async def identity(self) -> str:
        return "x"

    async def close(self) -> None:
        pass


def _service(profile: str) -> Service:
    svc = Service(
        load(profile),
        "postgresql://x@127.0.0.1:1/x",
        Endpoint("127.0.0.1", 1),
        "app-t",
        Path("/nonexistent"),
        b"k" * 32,
    )
    svc.db = _NoDeps()  # type: ignore[assignment]
    svc.cache = None
    return svc


async def _call(svc: Service, method: str, path: str, payload: bytes) -> tuple[int, Any]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": payload, "more_body": False}

    async def send(msg: dict[str, Any]) -> None:
        sent.append(msg)

    await svc({"type": "http", "method": method, "path": path, "headers": []}, receive, send)
    return sent[0]["status"], orjson.loads(sent[1]["body"])


path_parts = st.sampled_from(
    ["v1", "code", "results", "scans", "tokens", "verify", "1", ""]
) | st.text(max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    profile=st.sampled_from(["naive", "hardened"]),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "FOO"]),
    parts=st.lists(path_parts, min_size=1, max_size=5),
    payload=st.binary(max_size=64) | json_values.map(orjson.dumps),
)
def test_no_bad_path_or_body_gets_a_5xx(
    profile: str, method: str, parts: list[str], payload: bytes
) -> None:
    path = "/" + "/".join(parts)
    status, answer = asyncio.run(_call(_service(profile), method, path, payload))
    # 503 is the fake database being down (a valid request that needed it), never a crash
    assert status < 500 or (status == 503 and "database down" in answer["error"]), (
        status,
        answer,
    )
    assert answer["error"] if status >= 400 else True
