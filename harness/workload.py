"""The workload: a pure, seeded schedule of arrivals (rate profile, mix, client behaviours).

Nothing here does I/O or reads a clock. Given the same seed a `Workload` yields the
same `Arrival`s every time; the load runner (`harness.load`) sends them and interprets
the client behaviours, which are plain data.

Tutorial
--------
A morning surge: baseline 0.2 C, ramp to 2 C over 5 s, hold, back to baseline::

    from harness.workload import Constant, Ramp, Sequence, Workload, x

    surge = Sequence((
        Constant(x(0.2), 5.0),
        Ramp(x(0.2), x(2.0), 5.0),
        Constant(x(2.0), 15.0),
        Constant(x(0.2), 15.0),
    ))
    workload = Workload(profile=surge, seed=42)
    schedule = workload.schedule(capacity=3000.0, compression=1.0)
    for arrival in schedule.arrivals():   # Poisson arrivals, in time order
        arrival.intended, arrival.client_class, arrival.op, arrival.args

- **Rates** are `rps(...)` (absolute requests/s) or `x(...)` (multiples of capacity C,
  resolved by `Workload.schedule(capacity=...)`; an unresolved `x` rate is an error).
- **Profiles** are segments: `Constant`, `Ramp` (linear), `Step` (a jump at a given
  time) and `Sequence` (segments one after another). All durations are seconds.
- **Time compression**: `schedule(compression=10)` plays the profile 10x faster;
  client timeouts and pauses stay real, as DOMAIN.md asks.
- **Mix** (`Mix`) picks the operation; `Population` draws its arguments: people
  1..N uniform, venues 1..M with Zipf popularity, labs for ingest batches.
- **Clients** (`ClientClass`) share the arrivals; each carries a behaviour
  (`Good`, `Impatient`, `Buggy`, `Abuser`) that the runner interprets. An `Abuser`
  with a `rate` sends its own fixed-rate stream from a few identities instead of
  taking a share of the profile.
- **Re-reads** (`Reread`, on by default): a person whose positive result is in an
  ingest batch checks their own code soon after, so each positive result schedules
  `count` extra show-code arrivals from `p{person}` a seeded `delay` after the ingest's
  intended time (real seconds, not compressed). They are what gives the `no_false_green`
  invariant reads to judge; `Workload(..., reread=None)` turns them off.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "DEFAULT_CLIENTS",
    "MASS_TESTING_DAY",
    "NORMAL_DAY",
    "OPS",
    "Abuser",
    "Arrival",
    "Behaviour",
    "Buggy",
    "ClientClass",
    "Constant",
    "Good",
    "Impatient",
    "Ingest",
    "LabResult",
    "Lookup",
    "Mix",
    "OpArgs",
    "OpName",
    "Piece",
    "Population",
    "Ramp",
    "Rate",
    "Reread",
    "RetryBudget",
    "Scan",
    "Schedule",
    "Segment",
    "Sequence",
    "ShowCode",
    "Step",
    "Workload",
    "WorkloadError",
    "args_from_dict",
    "rps",
    "x",
]


class WorkloadError(ValueError):
    """A workload description that cannot be turned into a schedule."""


# --------------------------------------------------------------------------- rates


@dataclass(frozen=True, slots=True)
class Rate:
    """A request rate: absolute (requests/s) or `relative` (a multiple of capacity C)."""

    value: float
    relative: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.value, int | float) and math.isfinite(self.value)):
            raise WorkloadError(f"rate must be a finite number, got {self.value!r}")
        if self.value < 0:
            raise WorkloadError(f"rate must be >= 0, got {self.value!r}")

    def resolve(self, capacity: float | None) -> float:
        """Requests/s; a relative rate needs the measured capacity C."""
        if not self.relative:
            return float(self.value)
        if capacity is None or capacity <= 0:
            raise WorkloadError(
                f"rate {self.value} x C needs a measured capacity C > 0, got {capacity!r}"
                " (hint: calibrate first, or give the rate in requests/s with rps())"
            )
        return float(self.value) * capacity

    def __str__(self) -> str:
        return f"{self.value:g}C" if self.relative else f"{self.value:g}/s"


def rps(value: float) -> Rate:
    """An absolute rate in requests per second."""
    return Rate(value, relative=False)


def x(value: float) -> Rate:
    """A rate as a multiple of the measured capacity C."""
    return Rate(value, relative=True)


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True, slots=True)
class Piece:
    """One linear piece of a resolved profile: rate goes from r0 to r1 over [t0, t0+duration)."""

    t0: float
    duration: float
    r0: float
    r1: float

    def rate_at(self, t: float) -> float:
        if self.duration <= 0:
            return self.r0
        return self.r0 + (self.r1 - self.r0) * (t - self.t0) / self.duration

    @property
    def expected(self) -> float:
        """Expected number of arrivals in this piece (the integral of the rate)."""
        return (self.r0 + self.r1) / 2 * self.duration


def _check_duration(kind: str, duration: float) -> None:
    if not (isinstance(duration, int | float) and math.isfinite(duration) and duration >= 0):
        raise WorkloadError(f"{kind}.duration must be a number of seconds >= 0, got {duration!r}")


@dataclass(frozen=True, slots=True)
class Constant:
    """A constant rate for `duration` seconds."""

    rate: Rate
    duration: float

    def __post_init__(self) -> None:
        _check_duration("Constant", self.duration)

    def pieces(self, capacity: float | None) -> list[tuple[float, float, float]]:
        r = self.rate.resolve(capacity)
        return [(self.duration, r, r)]


@dataclass(frozen=True, slots=True)
class Ramp:
    """A linear ramp from `start` to `end` over `duration` seconds."""

    start: Rate
    end: Rate
    duration: float

    def __post_init__(self) -> None:
        _check_duration("Ramp", self.duration)

    def pieces(self, capacity: float | None) -> list[tuple[float, float, float]]:
        return [(self.duration, self.start.resolve(capacity), self.end.resolve(capacity))]


@dataclass(frozen=True, slots=True)
class Step:
    """`before` until `at` seconds, then `after` until `duration` seconds."""

    before: Rate
    after: Rate
    at: float
    duration: float

    def __post_init__(self) -> None:
        _check_duration("Step", self.duration)
        if not 0 <= self.at <= self.duration:
            raise WorkloadError(
                f"Step.at must lie within [0, duration={self.duration}], got {self.at!r}"
            )

    def pieces(self, capacity: float | None) -> list[tuple[float, float, float]]:
        b, a = self.before.resolve(capacity), self.after.resolve(capacity)
        return [(self.at, b, b), (self.duration - self.at, a, a)]


@dataclass(frozen=True, slots=True)
class Sequence:
    """Segments played one after another."""

    segments: tuple[Segment, ...]

    def __post_init__(self) -> None:
        if not self.segments:
            raise WorkloadError("Sequence needs at least one segment")

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)

    def pieces(self, capacity: float | None) -> list[tuple[float, float, float]]:
        out: list[tuple[float, float, float]] = []
        for s in self.segments:
            out.extend(s.pieces(capacity))
        return out


Segment = Constant | Ramp | Step | Sequence


# --------------------------------------------------------------------------- operations

OpName = Literal["show_code", "scan", "lookup", "ingest"]
OPS: tuple[OpName, ...] = ("show_code", "scan", "lookup", "ingest")


@dataclass(frozen=True, slots=True)
class ShowCode:
    """`GET /v1/code/{person_id}`."""

    person_id: int


@dataclass(frozen=True, slots=True)
class Scan:
    """`POST /v1/scans`; the client adds the person's token and the time."""

    scan_id: str
    person_id: int
    venue_id: int


@dataclass(frozen=True, slots=True)
class Lookup:
    """`GET /v1/results/{person_id}`."""

    person_id: int


@dataclass(frozen=True, slots=True)
class LabResult:
    """One test result in a lab's ingest batch."""

    sample_id: str
    person_id: int
    result: Literal["positive", "negative"]


@dataclass(frozen=True, slots=True)
class Ingest:
    """`POST /v1/results` with a batch of results."""

    results: tuple[LabResult, ...]


OpArgs = ShowCode | Scan | Lookup | Ingest


def args_from_dict(op: str, d: dict) -> OpArgs:
    """Rebuild typed operation arguments from their JSON form (see `harness.history`)."""
    if op == "show_code":
        return ShowCode(int(d["person_id"]))
    if op == "lookup":
        return Lookup(int(d["person_id"]))
    if op == "scan":
        return Scan(str(d["scan_id"]), int(d["person_id"]), int(d["venue_id"]))
    if op == "ingest":
        return Ingest(
            tuple(
                LabResult(str(r["sample_id"]), int(r["person_id"]), r["result"])
                for r in d["results"]
            )
        )
    raise WorkloadError(f"unknown operation {op!r}; expected one of {', '.join(OPS)}")


@dataclass(frozen=True, slots=True)
class Mix:
    """Operation shares; they are normalised, so they need not sum to exactly 1."""

    show_code: float = 0.80
    scan: float = 0.12
    lookup: float = 0.06
    ingest: float = 0.02

    def __post_init__(self) -> None:
        for op in OPS:
            v = getattr(self, op)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise WorkloadError(f"Mix.{op} must be a share >= 0, got {v!r}")
        if sum(getattr(self, op) for op in OPS) <= 0:
            raise WorkloadError("Mix shares sum to 0; give at least one operation a share")

    def cumulative(self) -> list[float]:
        total = sum(getattr(self, op) for op in OPS)
        return list(itertools.accumulate(getattr(self, op) / total for op in OPS))


NORMAL_DAY = Mix()
MASS_TESTING_DAY = Mix(show_code=0.60, scan=0.10, lookup=0.22, ingest=0.08)


@dataclass(frozen=True, slots=True)
class Population:
    """Who and where: people 1..people, venues 1..venues (Zipf popularity), labs."""

    people: int = 100_000
    venues: int = 2_000
    zipf_s: float = 1.0
    labs: int = 20
    batch_size: int = 20
    positive_rate: float = 0.02

    def __post_init__(self) -> None:
        for name in ("people", "venues", "labs", "batch_size"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 1):
                raise WorkloadError(f"Population.{name} must be an integer >= 1, got {v!r}")
        if not 0 <= self.positive_rate <= 1:
            raise WorkloadError(
                f"Population.positive_rate must lie in [0, 1], got {self.positive_rate!r}"
            )
        if self.zipf_s < 0:
            raise WorkloadError(f"Population.zipf_s must be >= 0, got {self.zipf_s!r}")


@dataclass(frozen=True, slots=True)
class Reread:
    """People who test positive check their own code soon after the result arrives.

    For each distinct positive person in an ingest batch, with probability `share`, the
    schedule adds `count` show-code arrivals for that person from their phone
    (`p{person}`), each at the ingest's intended time plus a delay drawn uniformly from
    `delay` = (low, high) seconds. Delays are real seconds (like client timeouts, not
    divided by the compression): they model how soon a person looks, and the ingest's
    acknowledgement takes real time too. Re-reads falling at or past the end of the
    schedule are dropped. Their class is drawn by share among the profile's non-abuser
    classes, as a person's own show-code would be (the ingest's class if there is none).

    With the defaults (2% ingest, batches of 20, 2% positive) that is about 0.016
    re-reads per arrival: ~50 in a 15 s run at 200 requests/s.
    """

    share: float = 1.0
    count: int = 2
    delay: tuple[float, float] = (0.2, 2.0)

    def __post_init__(self) -> None:
        if not (
            isinstance(self.share, int | float)
            and not isinstance(self.share, bool)
            and 0 <= self.share <= 1
        ):
            raise WorkloadError(f"Reread.share must lie in [0, 1], got {self.share!r}")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 0:
            raise WorkloadError(f"Reread.count must be an integer >= 0, got {self.count!r}")
        d = self.delay
        if not (
            isinstance(d, tuple)
            and len(d) == 2
            and all(isinstance(v, int | float) and math.isfinite(v) for v in d)
            and 0 <= d[0] <= d[1]
        ):
            raise WorkloadError(
                f"Reread.delay must be (low, high) seconds with 0 <= low <= high, got {d!r}"
            )

    @property
    def active(self) -> bool:
        return self.share > 0 and self.count > 0


# --------------------------------------------------------------------------- behaviours


@dataclass(frozen=True, slots=True)
class RetryBudget:
    """Retries one client allows itself: `ratio` per first attempt plus `min_per_s`, banked
    up to `burst` (it starts full). Each client id (a phone, a gate, a lab) has its own."""

    ratio: float = 0.1
    min_per_s: float = 0.5
    burst: float = 3.0


@dataclass(frozen=True, slots=True)
class Good:
    """A well-behaved app: timeout, few retries with full-jitter backoff, failover."""

    timeout: float = 3.0
    max_retries: int = 2
    backoff_base: float = 0.1
    backoff_cap: float = 2.0
    honour_retry_after: bool = True
    max_retry_after: float = 10.0
    budget: RetryBudget | None = RetryBudget()
    failover: bool = True

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**retry)] for retry = 1, 2, ..."""
        return rng.uniform(0.0, min(self.backoff_cap, self.backoff_base * 2 ** (retry - 1)))


@dataclass(frozen=True, slots=True)
class Impatient:
    """A person who gives up after `patience` s and re-opens the page after a `pause`."""

    patience: tuple[float, float] = (2.0, 5.0)
    pause: tuple[float, float] = (0.5, 3.0)
    max_attempts: int = 10


@dataclass(frozen=True, slots=True)
class Buggy:
    """A buggy app: retries at once, in a loop, until ok or `max_attempts`."""

    timeout: float = 10.0
    max_attempts: int = 50


@dataclass(frozen=True, slots=True)
class Abuser:
    """Few identities; with `rate`, a fixed-rate stream of its own (its share must be 0)."""

    identities: int = 3
    rate: Rate | None = None
    timeout: float = 3.0


Behaviour = Good | Impatient | Buggy | Abuser


@dataclass(frozen=True, slots=True)
class ClientClass:
    """A named client population taking `share` of the profile's arrivals."""

    name: str
    share: float
    behaviour: Behaviour = field(default_factory=Good)

    def __post_init__(self) -> None:
        if not self.name:
            raise WorkloadError("ClientClass.name must not be empty")
        if not (isinstance(self.share, int | float) and self.share >= 0):
            raise WorkloadError(f"clients.{self.name}.share must be >= 0, got {self.share!r}")
        if isinstance(self.behaviour, Abuser) and self.behaviour.rate is not None and self.share:
            raise WorkloadError(
                f"clients.{self.name}: an Abuser with a fixed rate sends its own stream;"
                f" its share must be 0, got {self.share!r}"
            )


DEFAULT_CLIENTS: tuple[ClientClass, ...] = (
    ClientClass("impatient", 0.94, Impatient()),
    ClientClass("buggy", 0.05, Buggy()),
    ClientClass("abuser", 0.01, Abuser()),
)


# --------------------------------------------------------------------------- arrivals


@dataclass(frozen=True, slots=True)
class Arrival:
    """One operation the schedule asks for, at `intended` seconds from the run start.

    `seed` drives every random choice the runner makes for this arrival's chain
    (jitter, patience, pauses), so reruns of one seed make the same choices.
    """

    index: int
    intended: float
    client_id: str
    client_class: str
    op: OpName
    args: OpArgs
    behaviour: Behaviour
    seed: int


@dataclass(frozen=True)
class Schedule:
    """A workload resolved to requests/s and compressed time; `arrivals()` replays it."""

    pieces: tuple[Piece, ...]
    workload: Workload
    capacity: float | None
    compression: float

    @property
    def duration(self) -> float:
        return sum(p.duration for p in self.pieces)

    def rate_at(self, t: float) -> float:
        """Offered rate (requests/s, profile only) at time t."""
        for p in self.pieces:
            if p.t0 <= t < p.t0 + p.duration:
                return p.rate_at(t)
        return 0.0

    def expected(self, t0: float = 0.0, t1: float | None = None) -> float:
        """Expected profile arrivals in [t0, t1), abusers' fixed streams excluded."""
        t1 = self.duration if t1 is None else t1
        total = 0.0
        for p in self.pieces:
            a, b = max(t0, p.t0), min(t1, p.t0 + p.duration)
            if b > a:
                total += (p.rate_at(a) + p.rate_at(b)) / 2 * (b - a)
        return total

    def arrivals(self) -> Iterator[Arrival]:
        """All arrivals in time order; lazy, deterministic, restartable."""
        wl = self.workload
        streams: list[Iterator[tuple[float, int, Arrival]]] = [self._profile_stream()]
        for k, cls in enumerate(wl.clients):
            b = cls.behaviour
            if isinstance(b, Abuser) and b.rate is not None:
                streams.append(self._abuser_stream(k, cls, b.rate.resolve(self.capacity)))
        merged: Iterator[tuple[float, int, Arrival]] = heapq.merge(
            *streams, key=lambda e: (e[0], e[1])
        )
        if wl.reread is not None and wl.reread.active:
            merged = self._with_rereads(merged, wl.reread)
        for index, (t, _, a) in enumerate(merged):
            yield Arrival(index, t, a.client_id, a.client_class, a.op, a.args, a.behaviour, a.seed)

    def _with_rereads(
        self, merged: Iterator[tuple[float, int, Arrival]], reread: Reread
    ) -> Iterator[tuple[float, int, Arrival]]:
        """`merged` with each ingest's re-reads slotted in at their times (a heap of pending
        re-reads, released before the first later arrival). Each ingest's re-reads come from
        an rng of their own, so the other arrivals are exactly those without re-reads."""
        wl = self.workload
        classes = [c for c in wl.clients if c.share > 0 and not isinstance(c.behaviour, Abuser)]
        total = sum(c.share for c in classes)
        class_cum = list(itertools.accumulate(c.share / total for c in classes))
        by_name = {c.name: c for c in wl.clients}
        end = self.duration
        pending: list[tuple[float, int, Arrival]] = []
        seq = itertools.count()
        for e in merged:
            t = e[0]
            while pending and pending[0][0] <= t:
                yield heapq.heappop(pending)
            yield e
            a = e[2]
            if a.op != "ingest" or not isinstance(a.args, Ingest):
                continue
            positives = dict.fromkeys(r.person_id for r in a.args.results if r.result == "positive")
            if not positives:
                continue
            rng = random.Random(f"{wl.seed}:reread:{a.client_class}:{a.seed}:{t!r}")
            for person in positives:
                if rng.random() >= reread.share:
                    continue
                for _ in range(reread.count):
                    when = t + rng.uniform(*reread.delay)
                    if classes:
                        cls = classes[min(bisect.bisect(class_cum, rng.random()), len(classes) - 1)]
                    else:
                        cls = by_name[a.client_class]
                    seed = rng.getrandbits(32)
                    if when >= end:
                        continue
                    follow = Arrival(
                        -1,
                        when,
                        f"p{person}",
                        cls.name,
                        "show_code",
                        ShowCode(person),
                        cls.behaviour,
                        seed,
                    )
                    heapq.heappush(pending, (when, next(seq), follow))
        while pending:
            yield heapq.heappop(pending)

    # The stream helpers yield (time, tiebreak, arrival-with-placeholder-index).

    def _profile_stream(self) -> Iterator[tuple[float, int, Arrival]]:
        wl = self.workload
        rng = random.Random(f"{wl.seed}:profile")
        classes = [
            c for c in wl.clients if not (isinstance(c.behaviour, Abuser) and c.behaviour.rate)
        ]
        total = sum(c.share for c in classes)
        if not classes or total <= 0:
            return
        class_cum = list(itertools.accumulate(c.share / total for c in classes))
        draw = _ArgDrawer(wl, rng)
        for n, t in enumerate(_poisson(self.pieces, rng)):
            cls = classes[min(bisect.bisect(class_cum, rng.random()), len(classes) - 1)]
            yield (t, 2 * n, draw.arrival(t, cls))

    def _abuser_stream(
        self, k: int, cls: ClientClass, rate: float
    ) -> Iterator[tuple[float, int, Arrival]]:
        wl = self.workload
        rng = random.Random(f"{wl.seed}:abuser:{k}:{cls.name}")
        draw = _ArgDrawer(wl, rng)
        piece = (Piece(0.0, self.duration, rate, rate),)
        for n, t in enumerate(_poisson(piece, rng)):
            yield (t, 2 * n + 1, draw.arrival(t, cls))


def _poisson(pieces: tuple[Piece, ...], rng: random.Random) -> Iterator[float]:
    """Non-homogeneous Poisson arrival times over piecewise-linear rates (exact inversion)."""
    for p in pieces:
        t, end, r0 = 0.0, p.duration, p.r0
        k = (p.r1 - p.r0) / p.duration if p.duration > 0 else 0.0
        lam = 0.0  # cumulative intensity reached so far within the piece
        while True:
            lam += rng.expovariate(1.0)
            # Solve r0*t + k*t^2/2 = lam for t >= 0.
            if abs(k) < 1e-12:
                if r0 <= 0:
                    break
                t = lam / r0
            else:
                disc = r0 * r0 + 2 * k * lam
                if disc < 0:
                    break
                t = (math.sqrt(disc) - r0) / k
            if t >= end:
                break
            yield p.t0 + t


class _ArgDrawer:
    """Draws operation, arguments and client identity for one arrival from a seeded rng."""

    def __init__(self, wl: Workload, rng: random.Random) -> None:
        self.rng = rng
        self.pop = wl.population
        self.mix_cum = wl.mix.cumulative()
        self.tag = wl.tag if wl.tag else f"{wl.seed}"
        pop = self.pop
        weights = [1.0 / (k**pop.zipf_s) for k in range(1, pop.venues + 1)]
        self.venue_cum = list(itertools.accumulate(weights))
        # Popularity rank -> venue id, shuffled so popular venues are not just low ids.
        ids = list(range(1, pop.venues + 1))
        random.Random(f"{wl.seed}:venues").shuffle(ids)
        self.venue_by_rank = ids
        self.scans = 0
        self.samples = 0

    def arrival(self, t: float, cls: ClientClass) -> Arrival:
        rng, pop = self.rng, self.pop
        op = OPS[min(bisect.bisect(self.mix_cum, rng.random()), 3)]
        person = rng.randint(1, pop.people)
        args: OpArgs
        if op == "show_code":
            args, client = ShowCode(person), f"p{person}"
        elif op == "lookup":
            args, client = Lookup(person), f"p{person}"
        elif op == "scan":
            r = rng.random() * self.venue_cum[-1]
            venue = self.venue_by_rank[min(bisect.bisect(self.venue_cum, r), pop.venues - 1)]
            self.scans += 1
            args = Scan(f"{self.tag}-{cls.name}-s{self.scans}", person, venue)
            client = f"g{venue}"
        else:
            batch = []
            for _ in range(pop.batch_size):
                self.samples += 1
                res = "positive" if rng.random() < pop.positive_rate else "negative"
                batch.append(
                    LabResult(
                        f"{self.tag}-{cls.name}-r{self.samples}", rng.randint(1, pop.people), res
                    )
                )
            args, client = Ingest(tuple(batch)), f"lab{rng.randint(1, pop.labs)}"
        b = cls.behaviour
        if isinstance(b, Abuser):
            client = f"{cls.name}-{rng.randint(1, b.identities)}"
        return Arrival(-1, t, client, cls.name, op, args, b, rng.getrandbits(32))


# --------------------------------------------------------------------------- workload


@dataclass(frozen=True)
class Workload:
    """A rate profile, an operation mix, a population and client classes, under one seed.

    `tag` prefixes scan and sample ids (default: the seed), so two runs of one seed
    against one database can be told apart by giving them different tags. `reread` adds
    show-codes by people soon after their positive result is ingested (`Reread`; None: off).
    """

    profile: Segment
    mix: Mix = NORMAL_DAY
    clients: tuple[ClientClass, ...] = DEFAULT_CLIENTS
    population: Population = Population()
    seed: int = 0
    tag: str = ""
    reread: Reread | None = Reread()

    def __post_init__(self) -> None:
        if self.reread is not None and not isinstance(self.reread, Reread):
            raise WorkloadError(f"Workload.reread must be a Reread or None, got {self.reread!r}")
        names = [c.name for c in self.clients]
        if len(set(names)) != len(names):
            raise WorkloadError(f"client class names must be unique, got {names}")
        if not self.clients:
            raise WorkloadError("Workload needs at least one client class")

    def schedule(self, capacity: float | None = None, compression: float = 1.0) -> Schedule:
        """Resolve rates against capacity C and divide profile durations by `compression`."""
        if not (compression > 0 and math.isfinite(compression)):
            raise WorkloadError(f"compression must be a number > 0, got {compression!r}")
        pieces: list[Piece] = []
        t = 0.0
        for duration, r0, r1 in self.profile.pieces(capacity):
            d = duration / compression
            pieces.append(Piece(t, d, r0, r1))
            t += d
        return Schedule(tuple(pieces), self, capacity, compression)
