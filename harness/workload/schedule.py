"""The workload: a pure, seeded schedule of arrivals over a system's declared operations.

Nothing here does I/O or reads a clock. Given the same seed a `Workload` yields the
same `Arrival`s every time; the load runner (`harness.load`) sends them and interprets
the client behaviours, which are plain data.

Tutorial
--------
A morning surge: baseline 0.2 C, ramp to 2 C over 5 s, hold, back to baseline::

    from harness.workload import Constant, Ramp, Series, Workload, x

    surge = Series((
        Constant(x(0.2), 5.0),
        Ramp(x(0.2), x(2.0), 5.0),
        Constant(x(2.0), 15.0),
        Constant(x(0.2), 15.0),
    ))
    workload = Workload(profile=surge, operations=sut.operations, seed=42)
    schedule = workload.schedule(capacity=3000.0, compression=1.0)
    for arrival in schedule.arrivals():   # Poisson arrivals, in time order
        arrival.intended, arrival.client_class, arrival.op, arrival.args

- **Operations** (`harness.operations`) are the system's own, declared as data; the
  `mix` picks one per arrival (default: the declaration's default mix) and its value
  generators draw its `args` (a mapping of value name to value).
- **Time compression**: `schedule(compression=10)` plays the profile 10x faster;
  client timeouts and pauses stay real.
- **Clients** (`ClientClass`) share the arrivals; each carries a behaviour the runner
  interprets. An `Abuser` with a `rate` sends its own fixed-rate stream from a few
  identities instead of taking a share of the profile.
- **Follow-ups** declared by an operation (e.g. a person looking at their own code soon
  after a lab reported them positive) are slotted in at their times, each from an rng of
  its own so the other arrivals stay exactly as without them (`followups=False`: off).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from harness.generators import Draw, Stream
from harness.operations import Followup, Mix, Operation, Operations
from harness.templates import ITEM_NAME
from harness.workload.clients import DEFAULT_CLIENTS, Abuser, Behaviour, ClientClass
from harness.workload.rates import Piece, Segment, WorkloadError

__all__ = ["Arrival", "Schedule", "Workload"]


@dataclass(frozen=True, slots=True)
class Arrival:
    """One operation the schedule asks for, at `intended` seconds from the run start.

    `args` are the values drawn for the operation's templates. `seed` drives every
    random choice the runner makes for this arrival's chain (jitter, patience, pauses),
    so reruns of one seed make the same choices.
    """

    index: int
    intended: float
    client_id: str
    client_class: str
    op: str
    args: Mapping[str, Any]
    behaviour: Behaviour
    seed: int


@dataclass(frozen=True)
class Workload:
    """A rate profile, a mix of declared operations and client classes, under one seed.

    `tag` starts every `sequence` value (default: the seed), so two runs of one seed
    against one database can be told apart by giving them different tags.
    """

    profile: Segment
    operations: Operations
    mix: Mix | None = None
    clients: tuple[ClientClass, ...] = DEFAULT_CLIENTS
    seed: int = 0
    tag: str = ""
    followups: bool = True

    def __post_init__(self) -> None:
        names = [c.name for c in self.clients]
        if len(set(names)) != len(names):
            raise WorkloadError(f"client class names must be unique, got {names}")
        if not self.clients:
            raise WorkloadError("Workload needs at least one client class")
        unknown = [op for op in self.the_mix.ops if op not in self.operations.ops]
        if unknown:
            raise WorkloadError(
                f"mix names undeclared operations {unknown}; declared: {list(self.operations.ops)}"
            )

    @property
    def the_mix(self) -> Mix:
        return self.mix if self.mix is not None else self.operations.mix

    def schedule(
        self,
        capacity: float | None = None,
        compression: float = 1.0,
        own_capacity: float | None = None,
    ) -> Schedule:
        """Resolve rates against capacity C (and `x_own` rates against the running
        profile's `own_capacity`) and divide profile durations by `compression`."""
        if not (compression > 0 and math.isfinite(compression)):
            raise WorkloadError(f"compression must be a number > 0, got {compression!r}")
        pieces: list[Piece] = []
        t = 0.0
        for duration, r0, r1 in self.profile.pieces(capacity, own_capacity):
            d = duration / compression
            pieces.append(Piece(t, d, r0, r1))
            t += d
        return Schedule(tuple(pieces), self, capacity, compression, own_capacity)


@dataclass(frozen=True)
class Schedule:
    """A workload resolved to requests/s and compressed time; `arrivals()` replays it."""

    pieces: tuple[Piece, ...]
    workload: Workload
    capacity: float | None
    compression: float
    own_capacity: float | None = None

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
        """All arrivals in time order; lazy, deterministic, restartable. The operations are
        compiled here, before the first arrival is asked for."""
        return self._arrivals(_Plan(self.workload))

    def _arrivals(self, plan: _Plan) -> Iterator[Arrival]:
        wl = self.workload
        streams: list[Iterator[tuple[float, int, Arrival]]] = [self._profile_stream(plan)]
        for k, cls in enumerate(wl.clients):
            b = cls.behaviour
            if isinstance(b, Abuser) and b.rate is not None:
                rate = b.rate.resolve(self.capacity, self.own_capacity)
                streams.append(self._abuser_stream(plan, k, cls, rate))
        merged: Iterator[tuple[float, int, Arrival]] = heapq.merge(
            *streams, key=lambda e: (e[0], e[1])
        )
        if wl.followups and plan.has_followups:
            merged = self._with_followups(plan, merged)
        for index, (t, _, a) in enumerate(merged):
            yield Arrival(index, t, a.client_id, a.client_class, a.op, a.args, a.behaviour, a.seed)

    def _with_followups(
        self, plan: _Plan, merged: Iterator[tuple[float, int, Arrival]]
    ) -> Iterator[tuple[float, int, Arrival]]:
        """`merged` with each arrival's follow-ups slotted in at their times (a heap of
        pending ones, released before the first later arrival)."""
        wl = self.workload
        classes = [c for c in wl.clients if c.share > 0 and not isinstance(c.behaviour, Abuser)]
        total = sum(c.share for c in classes)
        class_cum = list(itertools.accumulate(c.share / total for c in classes))
        by_name = {c.name: c for c in wl.clients}
        end = self.duration
        stream = Stream(plan.tag, "followup")
        pending: list[tuple[float, int, Arrival]] = []
        seq = itertools.count()
        for e in merged:
            t = e[0]
            while pending and pending[0][0] <= t:
                yield heapq.heappop(pending)
            yield e
            a = e[2]
            followups = plan.followups.get(a.op)
            if not followups:
                continue
            rng = random.Random(f"{wl.seed}:followup:{a.client_class}:{a.seed}:{t!r}")
            for fu in followups:
                for item in _matching(fu, a.args):
                    if rng.random() >= fu.share:
                        continue
                    env = {**a.args, ITEM_NAME: item} if item is not None else a.args
                    given = {name: t_.render(env) for name, t_ in fu.values.items()}
                    for _ in range(fu.count):
                        when = t + rng.uniform(*fu.delay)
                        if classes:
                            i = min(bisect.bisect(class_cum, rng.random()), len(classes) - 1)
                            cls = classes[i]
                        else:
                            cls = by_name[a.client_class]
                        stream.client_class = cls.name
                        follow = plan.arrival(rng, stream, when, cls, fu.op, given)
                        if when < end:
                            heapq.heappush(pending, (when, next(seq), follow))
        while pending:
            yield heapq.heappop(pending)

    # The stream helpers yield (time, tiebreak, arrival-with-placeholder-index).

    def _profile_stream(self, plan: _Plan) -> Iterator[tuple[float, int, Arrival]]:
        wl = self.workload
        rng = random.Random(f"{wl.seed}:profile")
        classes = [
            c for c in wl.clients if not (isinstance(c.behaviour, Abuser) and c.behaviour.rate)
        ]
        total = sum(c.share for c in classes)
        if not classes or total <= 0:
            return
        class_cum = list(itertools.accumulate(c.share / total for c in classes))
        stream = Stream(plan.tag)
        last = len(classes) - 1
        for n, t in enumerate(_poisson(self.pieces, rng)):
            cls = classes[min(bisect.bisect(class_cum, rng.random()), last)]
            stream.client_class = cls.name
            yield (t, 2 * n, plan.arrival(rng, stream, t, cls, plan.pick(rng)))

    def _abuser_stream(
        self, plan: _Plan, k: int, cls: ClientClass, rate: float
    ) -> Iterator[tuple[float, int, Arrival]]:
        wl = self.workload
        rng = random.Random(f"{wl.seed}:abuser:{k}:{cls.name}")
        stream = Stream(plan.tag, cls.name)
        piece = (Piece(0.0, self.duration, rate, rate),)
        for n, t in enumerate(_poisson(piece, rng)):
            yield (t, 2 * n + 1, plan.arrival(rng, stream, t, cls, plan.pick(rng)))


def _matching(fu: Followup, args: Mapping[str, Any]) -> Iterator[Any]:
    """The items of `fu.each` matching `fu.where` (distinct), or one None without `each`."""
    if fu.each is None:
        yield None
        return
    seen: list[Any] = []
    for item in args.get(fu.each) or ():
        matches = all(isinstance(item, dict) and item.get(k) == v for k, v in fu.where.items())
        if matches and item not in seen:
            seen.append(item)
            yield item


class _Plan:
    """The operations of one schedule compiled for drawing: mix, generators, client ids."""

    def __init__(self, wl: Workload) -> None:
        ops = wl.operations
        mix = wl.the_mix
        self.tag = wl.tag if wl.tag else f"{wl.seed}"
        self.names = mix.ops
        shares = [mix.share(n) for n in self.names]
        self.cum = list(itertools.accumulate(shares))
        self.last = len(self.names) - 1
        compiled: dict[int, Draw] = {}

        def draw_of(gen: Any) -> Draw:
            key = id(gen)
            if key not in compiled:
                compiled[key] = gen.compile(wl.seed)
            return compiled[key]

        self.draws: dict[str, tuple[tuple[str, Draw], ...]] = {}
        self.client: dict[str, Callable[[Mapping[str, Any]], Any]] = {}
        self.followups: dict[str, tuple[Followup, ...]] = {}
        for name, op in ops.ops.items():
            self.draws[name] = tuple((v, draw_of(op.generators[v])) for v in op.draws)
            self.client[name] = op.client.render
            if op.followups:
                self.followups[name] = op.followups
        self.has_followups = bool(self.followups)
        self.ops: Mapping[str, Operation] = ops.ops

    def pick(self, rng: random.Random) -> str:
        return self.names[min(bisect.bisect(self.cum, rng.random() * self.cum[-1]), self.last)]

    def arrival(
        self,
        rng: random.Random,
        stream: Stream,
        t: float,
        cls: ClientClass,
        op: str,
        given: Mapping[str, Any] | None = None,
    ) -> Arrival:
        args = {name: draw(rng, stream) for name, draw in self.draws[op]}
        if given:
            args.update(given)
        b = cls.behaviour
        if isinstance(b, Abuser):
            client = f"{cls.name}-{rng.randint(1, b.identities)}"
        else:
            default = f"{cls.name}-{stream.next('#client')}"
            client = str(self.client[op]({**args, "client": default}))
        return Arrival(-1, t, client, cls.name, op, args, b, rng.getrandbits(32))


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
