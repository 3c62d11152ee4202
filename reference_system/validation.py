"""Validation: turn request bodies and path parts into typed requests, or say what is wrong.

Every failure is a :class:`BadInput` carrying the HTTP status, a message naming the field,
the value received and what was expected. Unknown fields are rejected, not ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

MAX_ID = 2**31 - 1  # person_id, venue_id: PostgreSQL integer keys, 1..MAX_ID
MAX_TEXT_ID = 64
# scan_id, sample_id: client-chosen keys, 1..64 of these ASCII characters (no spaces,
# quotes, slashes, controls or non-ASCII: they end up in logs, JSON and the spool).
TEXT_ID_CHARS = "A-Z a-z 0-9 . _ : -"
_TEXT_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_TEXT_ID}}}")
_DECIMAL_ID = re.compile(r"[1-9][0-9]{0,9}")  # canonical: no sign, no leading zero
RESULTS = ("positive", "negative")


class BadInput(Exception):
    """A request the service will not act on; ``status`` is the 4xx to answer with."""

    def __init__(self, message: str, status: int = 400, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out


@dataclass(frozen=True)
class ScanRequest:
    """``POST /v1/scans``."""

    scan_id: str
    person_id: int
    venue_id: int
    token: str
    at: datetime


@dataclass(frozen=True)
class LabResult:
    """One item of ``POST /v1/results``."""

    sample_id: str
    person_id: int
    result: str
    at: datetime


def parse_person_id(text: str) -> int:
    """A person id from a URL path segment."""
    if not _DECIMAL_ID.fullmatch(text) or int(text) > MAX_ID:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise BadInput(
            f"person_id: got {shown!r}; expected an integer 1..{MAX_ID}", field="person_id"
        )
    return int(text)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadInput(f"body: expected a JSON object, got {type(data).__name__}")
    return data


def _fields(obj: dict[str, Any], required: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(obj) - set(required))
    if unknown:
        raise BadInput(
            f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; "
            f"expected exactly {', '.join(required)}",
            field=f"{where}.{unknown[0]}" if where != "body" else unknown[0],
        )
    missing = [k for k in required if k not in obj]
    if missing:
        raise BadInput(
            f"{where}: missing field(s) {', '.join(missing)}",
            field=missing[0] if where == "body" else f"{where}.{missing[0]}",
        )


def _shown(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (error messages stay small)."""
    text = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def _int_id(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise BadInput(
            f"{name}: got {_shown(value)} ({type(value).__name__}); "
            f"expected an integer 1..{MAX_ID}",
            field=name,
        )
    return value


def _text_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _TEXT_ID.fullmatch(value):
        raise BadInput(
            f"{name}: got {_shown(value)}; expected 1..{MAX_TEXT_ID} characters of {TEXT_ID_CHARS}",
            field=name,
        )
    return value


def _timestamp(value: Any, name: str) -> datetime:
    if isinstance(value, str) and len(value) <= 40:
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if ts.tzinfo is not None and 2000 <= ts.year <= 2100:
                return ts
    raise BadInput(
        f"{name}: got {_shown(value)}; expected an ISO-8601 time with a timezone, "
        f"e.g. '2022-01-04T09:00:00Z'",
        field=name,
    )


def parse_scan(body: bytes) -> ScanRequest:
    obj = _json_object(body)
    _fields(obj, ("scan_id", "person_id", "venue_id", "token", "at"), "body")
    token = obj["token"]
    if not isinstance(token, str) or not 1 <= len(token) <= 1024:
        raise BadInput(
            f"token: got {type(token).__name__}; expected the code's token string", field="token"
        )
    return ScanRequest(
        scan_id=_text_id(obj["scan_id"], "scan_id"),
        person_id=_int_id(obj["person_id"], "person_id"),
        venue_id=_int_id(obj["venue_id"], "venue_id"),
        token=token,
        at=_timestamp(obj["at"], "at"),
    )


def parse_results(body: bytes, max_batch: int) -> list[LabResult]:
    """``{"results": [{sample_id, person_id, result, at}, ...]}``, 1..max_batch items."""
    obj = _json_object(body)
    _fields(obj, ("results",), "body")
    items = obj["results"]
    if not isinstance(items, list) or not items:
        raise BadInput("results: expected a non-empty JSON array", field="results")
    if len(items) > max_batch:
        raise BadInput(
            f"results: batch of {len(items)} is too large; expected at most {max_batch}",
            status=422,  # not 413: that is the body's size, which nginx answers itself
            field="results",
        )
    out: list[LabResult] = []
    seen: dict[str, LabResult] = {}
    for i, item in enumerate(items):
        where = f"results[{i}]"
        if not isinstance(item, dict):
            raise BadInput(f"{where}: expected an object, got {type(item).__name__}", field=where)
        _fields(item, ("sample_id", "person_id", "result", "at"), where)
        result = item["result"]
        if result not in RESULTS:
            raise BadInput(
                f"{where}.result: got {_shown(result)}; expected one of {', '.join(RESULTS)}",
                field=f"{where}.result",
            )
        lab = LabResult(
            sample_id=_text_id(item["sample_id"], f"{where}.sample_id"),
            person_id=_int_id(item["person_id"], f"{where}.person_id"),
            result=result,
            at=_timestamp(item["at"], f"{where}.at"),
        )
        previous = seen.get(lab.sample_id)
        if previous is not None and previous != lab:
            raise BadInput(
                f"{where}.sample_id: {lab.sample_id!r} appears twice with different contents",
                field=f"{where}.sample_id",
            )
        if previous is None:
            seen[lab.sample_id] = lab
            out.append(lab)
    return out


def parse_verify(body: bytes) -> str:
    """``{"token": "..."}``."""
    obj = _json_object(body)
    _fields(obj, ("token",), "body")
    token = obj["token"]
    if not isinstance(token, str):
        raise BadInput(f"token: got {type(token).__name__}; expected a string", field="token")
    return token
