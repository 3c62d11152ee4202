"""The history: every operation the load runner invoked, with its outcome, as JSON lines.

One `Op` per attempt. Times are monotonic seconds from the run start: `intended`
(when the schedule or a behaviour wanted it sent), `sent` (when the runner handed it
to the client; `None` if it was never sent) and `completed`. Latency is measured from
`intended`, so a late send counts against the system, never for it.

Outcomes follow Jepsen: `ok` (applied), `fail` (definitely not applied) and `info`
(unknown: a write that timed out or lost its connection after being sent). A retry
(`cause="retry"`) or a re-opened page (`cause="reopen"`) is a new `Op` whose `parent`
is the op it follows and whose `root` is the first op of the chain.

An `Intent` is what one person (or gate, or lab) wanted: the chain of attempts sharing a
root. `intents` groups a history into them, so a checker can judge either unit: each
attempt (did every request succeed, how fast) or each intent (did the person get their
answer, across retries and re-opens, and how long after they first asked).
`amplification` counts attempts per intent for each client class.

`args` are the values drawn for the operation's templates (a JSON object); `value` holds
the response fields the operation keeps. `HistoryWriter` streams ops to a `.jsonl` file,
gzip-compressed when its name ends in `.gz` (a run's `history.jsonl.gz`: about a sixth
of the size; level 1, so a flush keeps the sender on time); `load` reads either back;
`quantile` is the one percentile rule every reader uses (nearest rank), and
`percentiles`, `counts` and `windows` summarise ops for invariants and reports.
"""

from __future__ import annotations

import gzip
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import orjson

__all__ = [
    "NEVER_SENT",
    "Amplification",
    "Cause",
    "History",
    "HistoryWriter",
    "Intent",
    "Op",
    "Outcome",
    "amplification",
    "counts",
    "intents",
    "load",
    "percentiles",
    "quantile",
    "windows",
]

Outcome = Literal["ok", "fail", "info"]
Cause = Literal["first", "retry", "reopen"]

NEVER_SENT = "never_sent"
"""The `error` of an op the runner could not send within its lateness bound."""


@dataclass(frozen=True, slots=True)
class Op:
    """One attempt at one operation, invoked and completed exactly once."""

    id: int
    client_id: str
    client_class: str
    op: str
    args: Mapping[str, Any]
    intended: float
    sent: float | None
    completed: float
    outcome: Outcome
    status: int | None = None
    error: str | None = None
    attempt: int = 1
    cause: Cause = "first"
    parent: int | None = None
    root: int | None = None
    arrival: int | None = None
    target: int | None = None
    value: Any = None

    @property
    def latency(self) -> float | None:
        """Seconds from intended send to completion; `None` if never sent."""
        return None if self.sent is None else self.completed - self.intended

    @property
    def lateness(self) -> float | None:
        """Seconds from intended to actual send (how late the runner was)."""
        return None if self.sent is None else self.sent - self.intended

    def to_json(self) -> bytes:
        return orjson.dumps(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Op:
        return cls(
            id=d["id"],
            client_id=d["client_id"],
            client_class=d["client_class"],
            op=d["op"],
            args=d["args"],
            intended=d["intended"],
            sent=d["sent"],
            completed=d["completed"],
            outcome=d["outcome"],
            status=d.get("status"),
            error=d.get("error"),
            attempt=d.get("attempt", 1),
            cause=d.get("cause", "first"),
            parent=d.get("parent"),
            root=d.get("root"),
            arrival=d.get("arrival"),
            target=d.get("target"),
            value=d.get("value"),
        )


class History:
    """An in-memory history (a list of ops) that the runner appends to."""

    def __init__(self, ops: Iterable[Op] = ()) -> None:
        self.ops: list[Op] = list(ops)

    def append(self, op: Op) -> None:
        self.ops.append(op)

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    def write(self, path: str | Path) -> None:
        with HistoryWriter(path) as w:
            for op in self.ops:
                w.append(op)


class HistoryWriter:
    """Streams ops to a JSON-lines file, one op per line; use as a context manager."""

    def __init__(self, path: str | Path, *, buffer_ops: int = 1024) -> None:
        self.path = Path(path)
        self._file: IO[bytes] | None = _open(self.path, "wb")
        self._buf: list[bytes] = []
        self._buffer_ops = buffer_ops
        self.count = 0

    def append(self, op: Op) -> None:
        self._buf.append(orjson.dumps(op, option=orjson.OPT_APPEND_NEWLINE))
        self.count += 1
        if len(self._buf) >= self._buffer_ops:
            self.flush()

    def flush(self) -> None:
        if self._file is None:
            raise ValueError(f"history {self.path} is closed")
        self._file.write(b"".join(self._buf))
        self._buf.clear()
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self.flush()
            self._file.close()
            self._file = None

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open(path: Path, mode: str) -> IO[bytes]:
    """The file, through gzip when its name ends in `.gz` (closed by the caller)."""
    if path.suffix == ".gz":
        return gzip.open(path, mode, compresslevel=1)  # type: ignore[return-value]  # GzipFile
    return open(path, mode)


def load(path: str | Path) -> list[Op]:
    """Read a JSON-lines history back (gzipped when its name ends in `.gz`); errors name
    the file and line."""
    ops: list[Op] = []
    with _open(Path(path), "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                ops.append(Op.from_dict(orjson.loads(line)))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{path}:{n}: not a history op ({type(e).__name__}: {e})") from e
    return ops


# --------------------------------------------------------------------------- intents


@dataclass(frozen=True, slots=True)
class Intent:
    """One user intent: a chain of attempts (first try, retries, re-opens) with one root.

    `root` is the first attempt (the earliest op present, should the history lack the
    root itself); `answered` is when the first successful attempt completed (None: the
    client gave up, or the run ended first); `ended` is when the last attempt completed.
    """

    root: Op
    attempts: int
    ok: bool
    answered: float | None
    ended: float
    retries: int = 0
    reopens: int = 0
    never_sent: int = 0

    @property
    def intended(self) -> float:
        """When the person first asked (run seconds)."""
        return self.root.intended

    @property
    def latency(self) -> float:
        """Seconds from the first ask to the answer, or, never answered, to the end of the
        last attempt (when the client gave up): what the person waited."""
        end = self.answered if self.answered is not None else self.ended
        return max(0.0, end - self.root.intended)


def intents(ops: Iterable[Op]) -> list[Intent]:
    """Group attempts into intents by their root, in the order of the roots' ids."""
    first: dict[int, Op] = {}
    stats: dict[int, list[Any]] = {}  # attempts, answered, ended, retries, reopens, never_sent
    for o in ops:
        r = o.root if o.root is not None else o.id
        if r not in first or o.id < first[r].id:
            first[r] = o
        s = stats.get(r)
        if s is None:
            s = stats[r] = [0, None, o.completed, 0, 0, 0]
        s[0] += 1
        if o.outcome == "ok" and (s[1] is None or o.completed < s[1]):
            s[1] = o.completed
        s[2] = max(s[2], o.completed)
        s[3] += o.cause == "retry"
        s[4] += o.cause == "reopen"
        s[5] += o.sent is None
    return [
        Intent(first[r], s[0], s[1] is not None, s[1], s[2], s[3], s[4], s[5])
        for r, s in sorted(stats.items())
    ]


@dataclass(frozen=True, slots=True)
class Amplification:
    """One client class's intents and the attempts they took: `ratio` is attempts per
    intent (1.0: nobody retried), `max_attempts` the longest chain, `answered` the intents
    that got a successful answer."""

    client_class: str
    intents: int
    attempts: int
    answered: int
    retries: int
    reopens: int
    never_sent: int
    max_attempts: int

    @property
    def ratio(self) -> float:
        return self.attempts / self.intents if self.intents else 0.0


def amplification(ops: Iterable[Op]) -> list[Amplification]:
    """Attempts per intent for each client class (sorted by class name)."""
    by_class: dict[str, list[Intent]] = {}
    for i in intents(ops):
        by_class.setdefault(i.root.client_class, []).append(i)
    return [
        Amplification(
            client_class=name,
            intents=len(group),
            attempts=sum(i.attempts for i in group),
            answered=sum(i.ok for i in group),
            retries=sum(i.retries for i in group),
            reopens=sum(i.reopens for i in group),
            never_sent=sum(i.never_sent for i in group),
            max_attempts=max(i.attempts for i in group),
        )
        for name, group in sorted(by_class.items())
    ]


# --------------------------------------------------------------------------- summaries

Selector = Callable[[Op], bool]


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank `q`-th percentile (0 < q <= 100) of ascending, non-empty values."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values) - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def percentiles(
    ops: Iterable[Op],
    qs: Iterable[float] = (50, 90, 99, 99.9),
    where: Selector | None = None,
    *,
    value: Callable[[Op], float | None] | None = None,
) -> dict[float, float]:
    """Percentiles (nearest rank) in seconds of `value` (default: latency of sent ops) over
    the selected ops; an empty dict when nothing was selected."""
    get = value if value is not None else (lambda op: op.latency)
    values = sorted(v for op in ops if (where is None or where(op)) and (v := get(op)) is not None)
    if not values:
        return {}
    return {q: quantile(values, q) for q in qs}


def counts(
    ops: Iterable[Op], by: tuple[str, ...] = ("op", "outcome"), where: Selector | None = None
) -> Counter[tuple[Any, ...]]:
    """Count ops grouped by the named fields, e.g. `by=("client_class", "outcome")`."""
    c: Counter[tuple[Any, ...]] = Counter()
    for op in ops:
        if where is None or where(op):
            c[tuple(getattr(op, f) for f in by)] += 1
    return c


def windows(
    ops: Iterable[Op],
    width: float,
    by: tuple[str, ...] = ("outcome",),
    *,
    time: Literal["intended", "completed"] = "completed",
    where: Selector | None = None,
) -> dict[float, Counter[tuple[Any, ...]]]:
    """Counts per time window of `width` seconds (keyed by window start), sorted by time."""
    if width <= 0:
        raise ValueError(f"window width must be > 0 seconds, got {width!r}")
    out: dict[float, Counter[tuple[Any, ...]]] = {}
    for op in ops:
        if where is not None and not where(op):
            continue
        start = (getattr(op, time) // width) * width
        out.setdefault(start, Counter())[tuple(getattr(op, f) for f in by)] += 1
    return dict(sorted(out.items()))
