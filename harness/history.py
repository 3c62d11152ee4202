"""The history: every operation the load runner invoked, with its outcome, as JSON lines.

One `Op` per attempt. Times are monotonic seconds from the run start: `intended`
(when the schedule or a behaviour wanted it sent), `sent` (when the runner handed it
to the client; `None` if it was never sent) and `completed`. Latency is measured from
`intended`, so a late send counts against the system, never for it.

Outcomes follow Jepsen: `ok` (applied), `fail` (definitely not applied) and `info`
(unknown: a write that timed out or lost its connection after being sent). A retry
(`cause="retry"`) or a re-opened page (`cause="reopen"`) is a new `Op` whose `parent`
is the op it follows and whose `root` is the first op of the chain.

`HistoryWriter` streams ops to a `.jsonl` file; `load` reads them back; `latency_histogram`,
`percentiles`, `counts` and `windows` summarise them for invariants and reports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import orjson
from hdrh.histogram import HdrHistogram

from harness.workload import OpArgs, args_from_dict

__all__ = [
    "NEVER_SENT",
    "Cause",
    "History",
    "HistoryWriter",
    "Op",
    "Outcome",
    "counts",
    "latency_histogram",
    "load",
    "percentiles",
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
    args: OpArgs
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
            args=args_from_dict(d["op"], d["args"]),
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
        self._file: IO[bytes] | None = open(self.path, "wb")  # noqa: SIM115 (closed in close())
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


def load(path: str | Path) -> list[Op]:
    """Read a JSON-lines history back; errors name the file and line."""
    ops: list[Op] = []
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                ops.append(Op.from_dict(orjson.loads(line)))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{path}:{n}: not a history op ({type(e).__name__}: {e})") from e
    return ops


# --------------------------------------------------------------------------- summaries

Selector = Callable[[Op], bool]


def latency_histogram(
    ops: Iterable[Op], where: Selector | None = None, *, max_seconds: float = 3600.0
) -> HdrHistogram:
    """Latencies (from intended time) of sent ops, in microseconds, 3 significant digits."""
    h = HdrHistogram(1, int(max_seconds * 1e6), 3)
    for op in ops:
        if op.sent is None or (where is not None and not where(op)):
            continue
        h.record_value(max(1, round((op.completed - op.intended) * 1e6)))
    return h


def percentiles(
    ops: Iterable[Op],
    qs: Iterable[float] = (50, 90, 99, 99.9),
    where: Selector | None = None,
    *,
    value: Callable[[Op], float | None] | None = None,
) -> dict[float, float]:
    """Percentiles in seconds of `value` (default: latency) over the selected ops.

    Returns an empty dict when nothing was selected.
    """
    if value is None:
        h = latency_histogram(ops, where)
    else:
        h = HdrHistogram(1, 3_600_000_000, 3)
        for op in ops:
            if where is not None and not where(op):
                continue
            v = value(op)
            if v is not None:
                h.record_value(max(1, round(abs(v) * 1e6)))
    if h.get_total_count() == 0:
        return {}
    return {q: h.get_value_at_percentile(q) / 1e6 for q in qs}


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
