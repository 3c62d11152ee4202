"""The declared operations as typed data: how each request is built, how its answer is
read, and the mixes that share arrivals among them (`harness.operations` reads them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.generators import Generator
from harness.templates import Template

__all__ = [
    "METHODS",
    "READ_OUTCOMES",
    "SPECIAL",
    "WRITE_OUTCOMES",
    "Capture",
    "Followup",
    "Mix",
    "Operation",
    "Operations",
    "Outcome",
    "Outcomes",
]

Outcome = Literal["ok", "fail", "info"]
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
SPECIAL = frozenset({"client", "now"})
MAX_TIMEOUT = 600.0


@dataclass(frozen=True)
class Outcomes:
    """Which HTTP statuses are ok and which leave the outcome unknown; the rest fail."""

    ok: frozenset[int]
    info: frozenset[int] = frozenset()

    def classify(self, status: int) -> Outcome:
        if status in self.ok:
            return "ok"
        return "info" if status in self.info else "fail"


_2XX = frozenset(range(200, 300))
READ_OUTCOMES = Outcomes(_2XX)
WRITE_OUTCOMES = Outcomes(_2XX, frozenset({500, 502, 504}))


@dataclass(frozen=True)
class Capture:
    """A value an answer provides to later operations: a JSON field or a header, stored
    under `key` (default: the client id, so one client's flow sees its own)."""

    name: str
    json: tuple[str | int, ...] | None
    header: str | None
    key: Template


@dataclass(frozen=True)
class Followup:
    """More arrivals of `op` after this operation's (see the module docstring)."""

    op: str
    values: Mapping[str, Template]
    each: str | None = None
    where: Mapping[str, Any] = field(default_factory=dict)
    count: int = 1
    delay: tuple[float, float] = (0.0, 0.0)
    share: float = 1.0


@dataclass(frozen=True)
class Operation:
    """One declared operation: how its request is built and how its answer is read."""

    name: str
    method: str
    path: Template
    client: Template
    write: bool
    outcomes: Outcomes
    headers: tuple[tuple[str, Template], ...] = ()
    body: Template | None = None
    timeout: float | None = None
    key: Template | None = None
    draws: tuple[str, ...] = ()  # the values drawn for each arrival, in draw order
    generators: Mapping[str, Generator] = field(default_factory=dict)
    captures: tuple[Capture, ...] = ()
    requires: Mapping[str, str] = field(default_factory=dict)
    keep: tuple[tuple[str, tuple[str | int, ...]], ...] = ()
    followups: tuple[Followup, ...] = ()

    @property
    def kind(self) -> Literal["read", "write"]:
        return "write" if self.write else "read"


@dataclass(frozen=True)
class Mix:
    """Shares of operations by name; normalised, so they need not sum to exactly 1."""

    shares: tuple[tuple[str, float], ...]

    def __post_init__(self) -> None:
        if not self.shares or sum(s for _, s in self.shares) <= 0:
            raise ValueError("a mix needs at least one operation with a share > 0")

    @classmethod
    def of(cls, **shares: float) -> Mix:
        return cls(tuple(shares.items()))

    @property
    def ops(self) -> tuple[str, ...]:
        return tuple(name for name, share in self.shares if share > 0)

    def share(self, op: str) -> float:
        total = sum(s for _, s in self.shares)
        return sum(s for n, s in self.shares if n == op) / total

    def describe(self) -> str:
        return "/".join(f"{n}={s:g}" for n, s in self.shares)


@dataclass(frozen=True)
class Operations:
    """A system's declared operations, its named mixes and the default mix."""

    ops: Mapping[str, Operation]
    mixes: Mapping[str, Mix] = field(default_factory=dict)
    default_mix: Mix | None = None
    source: str = "<memory>"
    digest: str = ""  # a hash of the declaration, for calibration keys

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.ops)

    def op(self, name: str) -> Operation:
        try:
            return self.ops[name]
        except KeyError:
            raise KeyError(f"no operation {name!r}; declared: {list(self.ops)}") from None

    @property
    def mix(self) -> Mix:
        """The default mix: the declared one, else every operation an equal share."""
        return self.default_mix or Mix(tuple((n, 1.0) for n in self.ops))

    @property
    def writes(self) -> tuple[str, ...]:
        return tuple(n for n, o in self.ops.items() if o.write)
