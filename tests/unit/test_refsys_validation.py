"""Validation: typed requests out, 4xx with the field named for everything else."""

from __future__ import annotations

import orjson
import pytest

from reference_system.validation import (
    BadInput,
    parse_person_id,
    parse_results,
    parse_scan,
    parse_verify,
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


def test_good_scan() -> None:
    req = parse_scan(body(SCAN))
    assert (req.scan_id, req.person_id, req.venue_id) == ("s-1", 5, 9)
    assert req.at.utcoffset() is not None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"extra": 1}, "extra"),
        ({"person_id": "5"}, "person_id"),
        ({"person_id": True}, "person_id"),
        ({"person_id": 0}, "person_id"),
        ({"person_id": 2**31}, "person_id"),
        ({"venue_id": 1.0}, "venue_id"),
        ({"scan_id": ""}, "scan_id"),
        ({"scan_id": "x" * 65}, "scan_id"),
        ({"scan_id": 12}, "scan_id"),
        ({"at": "2022-01-04T09:00:00"}, "at"),  # no timezone
        ({"at": "yesterday"}, "at"),
        ({"at": 1641286800}, "at"),
        ({"token": None}, "token"),
    ],
)
def test_bad_scan_names_the_field(change: dict, field: str) -> None:
    with pytest.raises(BadInput) as err:
        parse_scan(body({**SCAN, **change}))
    assert err.value.status == 400
    assert err.value.field == field


def test_missing_field() -> None:
    partial = {k: v for k, v in SCAN.items() if k != "venue_id"}
    with pytest.raises(BadInput, match="missing field"):
        parse_scan(body(partial))


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b"null", b"\xff\xfe", b'"x"'])
def test_not_an_object(raw: bytes) -> None:
    with pytest.raises(BadInput) as err:
        parse_scan(raw)
    assert err.value.status == 400


def item(i: int, result: str = "negative") -> dict:
    return {
        "sample_id": f"x{i}",
        "person_id": i + 1,
        "result": result,
        "at": "2022-01-04T09:00:00+08:00",
    }


def test_results_batch() -> None:
    got = parse_results(body({"results": [item(0), item(1, "positive")]}), 10)
    assert [r.result for r in got] == ["negative", "positive"]


def test_oversized_batch_is_422() -> None:
    with pytest.raises(BadInput) as err:
        parse_results(body({"results": [item(i) for i in range(11)]}), 10)
    assert err.value.status == 422 and "11" in str(err.value)


def test_exact_duplicate_sample_is_collapsed_conflicting_one_rejected() -> None:
    assert len(parse_results(body({"results": [item(0), item(0)]}), 10)) == 1
    other = {**item(0), "person_id": 99}
    with pytest.raises(BadInput, match="twice"):
        parse_results(body({"results": [item(0), other]}), 10)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"results": []}, "results"),
        ({"results": {}}, "results"),
        ({"results": [1]}, "results[0]"),
        ({"results": [{**item(0), "result": "maybe"}]}, "results[0].result"),
        ({"results": [{**item(0), "extra": 1}]}, "results[0].extra"),
        ({"results": [item(0), {**item(1), "person_id": -1}]}, "results[1].person_id"),
        ({"result": [item(0)]}, "result"),
    ],
)
def test_bad_results(payload: dict, field: str) -> None:
    with pytest.raises(BadInput) as err:
        parse_results(body(payload), 10)
    assert err.value.field == field
    assert err.value.body()["error"]


@pytest.mark.parametrize("text", ["", "abc", "0", "-1", "1.5", "2147483648", "１２", "99999999999"])
def test_bad_person_id(text: str) -> None:
    with pytest.raises(BadInput):
        parse_person_id(text)


def test_person_id() -> None:
    assert parse_person_id("100000") == 100000


def test_verify_body() -> None:
    assert parse_verify(b'{"token": "t"}') == "t"
    with pytest.raises(BadInput):
        parse_verify(b'{"token": 1}')
