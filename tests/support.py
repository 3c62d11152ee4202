"""What the project's own tests share: the reference system's declared operations, small
declared operations of their own, and a builder for history ops."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from harness.history import Op
from harness.operations import Operations, parse_operations
from harness.sut import SystemUnderTest, load_sut
from harness.validate import Node


@functools.cache
def _reference(params: str) -> SystemUnderTest:
    return load_sut(profile="hardened", params=json.loads(params))


def reference(**params: Any) -> SystemUnderTest:
    """The reference system under test (hardened), with parameters overridden."""
    return _reference(json.dumps(params, sort_keys=True))


def reference_operations(**params: Any) -> Operations:
    """The reference system's declared operations (people, venues: its parameters)."""
    ops = reference(**params).operations
    assert ops is not None
    return ops


def operations(spec: Mapping[str, Any]) -> Operations:
    """Declared operations from a mapping, as a topology's `operations:` holds them."""
    return parse_operations(Node(dict(spec), "<test>", "operations"))


def op(
    id: int,
    name: str = "read",
    *,
    intended: float = 0.0,
    latency: float = 0.01,
    outcome: str = "ok",
    status: int | None = 200,
    args: Mapping[str, Any] | None = None,
    sent: float | bool | None = True,
    client_class: str = "good",
    client_id: str = "c1",
    cause: str = "first",
    root: int | None = None,
    value: Any = None,
    error: str | None = None,
) -> Op:
    """One history op with sensible defaults: sent when intended, done `latency` later."""
    sent_at = intended if sent is True else (None if sent in (False, None) else float(sent))
    return Op(
        id=id,
        client_id=client_id,
        client_class=client_class,
        op=name,
        args=dict(args or {}),
        intended=intended,
        sent=sent_at,
        completed=intended + latency,
        outcome=outcome,  # type: ignore[arg-type]  # tests pass the three literals
        status=status,
        error=error,
        cause=cause,  # type: ignore[arg-type]
        root=root,
        value=value,
    )
