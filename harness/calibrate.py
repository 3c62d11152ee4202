"""Calibration: the capacity C of a running system, found by a short open-loop search and cached.

C is the highest open-loop rate of the system's calibration mix at which its SLO
operation's p99 (from intended send time) stays within the SLO and errors stay low
(`harness.sut.Slo`, declared in the topology's `capacity:`). Rates in workloads are
multiples of C (`harness.workload.x`), so "2.0 C" means the same thing on any machine.

    from harness.calibrate import calibrate
    cap = calibrate(system, sut)                     # a running System and its SystemUnderTest
    schedule = workload.schedule(capacity=cap.rps)

The search sends short open-loop steps (`CapacitySearch.step_seconds` each, no retries):
it doubles the rate from `start_rps` until a step breaks the SLO or the error bound, then
bisects between the last passing and first failing rate until they are within
`precision` of each other, and runs the failing rate once more (a pass then moves the
search above it). Between steps it pauses `settle` seconds so a backlog does
not leak into the next step. Every step is kept in `Capacity.steps`.

Results are cached in `~/.cache/harness/calibration.json` (`$XDG_CACHE_HOME` honoured)
under a key naming the system (topology, parameters, backend, the links that run direct,
operations, SLO), the host, its CPU count, the harness version and the generator's event
loop; `calibrate` returns the cached value unless `refresh=True`. The generator shares
the machine's CPUs with the system: the search measures how much CPU other processes
took meanwhile (`harness.cpu`); a search on a busy machine is done once more, and if the
machine is still busy it is refused (`CalibrationError`), never cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib.metadata
import json
import os
import platform
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from harness.client import Client
from harness.cpu import CpuMeter, CpuShare
from harness.errors import HarnessError
from harness.history import History, percentiles
from harness.load import LOOP, LoadConfig, run_generator, run_load
from harness.operations import Mix, Operations
from harness.sut import Slo, SystemUnderTest
from harness.workload import ClientClass, Constant, Good, Workload, rps

__all__ = [
    "CalibrationError",
    "Capacity",
    "CapacitySearch",
    "Trial",
    "cache_path",
    "cached_capacity",
    "calibrate",
    "calibrate_async",
    "capacity_key",
]

ClientFactory = Callable[[Sequence[str]], AbstractAsyncContextManager[Client]]
Bound = Literal["system", "generator", "max_rps", "max_steps"]


class CalibrationError(HarnessError):
    """No capacity could be measured: no rate met the SLO, or the machine was too busy."""


@dataclass(frozen=True, slots=True)
class Trial:
    """One step of the search: `rate` req/s offered open-loop for `seconds`.

    `p99` is the SLO operation's p99 from intended send time (what the SLO judges);
    `service_p99` is from the actual send, so a gap between them is the generator's.
    """

    rate: float
    seconds: float
    sent: int
    ok: int
    errors: int
    never_sent: int
    p99: float | None
    service_p99: float | None
    lateness_p99: float
    passed: bool
    reason: str = ""

    @property
    def error_rate(self) -> float:
        return self.errors / max(1, self.sent + self.never_sent)


@dataclass(frozen=True, slots=True)
class Capacity:
    """The measured capacity C: `rps` with the SLO operation's p99 `p99` seconds there.

    `bound` says what stopped the search: the system, the generator (it could not send
    on time: the first failing step would have passed measured from the actual send, so
    C is a lower bound), `max_rps`, or `max_steps` (no step failed before the step budget
    ran out: C is a lower bound). `load_before` is the machine's 1-minute load average
    when the search began; `others` how many cores other processes used during it.
    """

    rps: float
    p99: float
    measured_at: str
    key: str
    steps: tuple[Trial, ...]
    slo_p99: float = 0.3
    bound: Bound = "system"
    load_before: float | None = None
    others: float | None = None
    steal: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Capacity:
        return cls(
            rps=float(d["rps"]),
            p99=float(d["p99"]),
            measured_at=str(d["measured_at"]),
            key=str(d["key"]),
            steps=tuple(Trial(**t) for t in d.get("steps", ())),
            slo_p99=float(d.get("slo_p99", 0.3)),
            bound=d.get("bound", "system"),
            load_before=d.get("load_before"),
            others=d.get("others"),
            steal=d.get("steal"),
        )


# --------------------------------------------------------------------------- the cache


def cache_path() -> Path:
    """`$XDG_CACHE_HOME/harness/calibration.json`, by default under `~/.cache`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness" / "calibration.json"


def _harness_version() -> str:
    try:
        return importlib.metadata.version("xian-chaos-harness")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def capacity_key(system: str) -> str:
    """The cache key: the system (`SystemUnderTest.key`), on which machine, by which harness."""
    return (
        f"{system} | host={platform.node()} cpus={os.cpu_count()}"
        f" | harness={_harness_version()} loop={LOOP}"
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}  # a corrupt cache is a cache miss, not an error
    return data if isinstance(data, dict) else {}


def cached_capacity(key: str, *, path: Path | None = None) -> Capacity | None:
    """The cached capacity for `key` (see `capacity_key`), or None."""
    entry = _read(path or cache_path()).get(key)
    if not isinstance(entry, dict):
        return None
    try:
        return Capacity.from_dict(entry)
    except (KeyError, TypeError, ValueError):
        return None


def _store(cap: Capacity, path: Path) -> None:
    with _locked(path):
        data = _read(path)
        data[cap.key] = cap.to_dict()
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)


# --------------------------------------------------------------------------- the search


class _Probe:
    """Arrivals of the SLO operation to probe with between steps (drawn once, reused)."""

    def __init__(self, operations: Operations, op: str) -> None:
        workload = Workload(
            Constant(rps(1000), 1.0),
            operations,
            Mix(((op, 1.0),)),
            (ClientClass("probe", 1.0, Good(1.0, 0, budget=None, failover=False)),),
            seed=7,
            tag=f"probe-{time.time_ns()}",
            followups=False,
        )
        self.arrivals = list(workload.schedule().arrivals())[:200]


async def _recovered(
    client: Client, targets: int, probe: _Probe, slo_p99: float, within: float
) -> bool:
    """Wait until 10 SLO operations in a row on every target answer ok within SLO/2."""
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    streak = 0
    n = 0
    while loop.time() < end and probe.arrivals:
        a = probe.arrivals[n % len(probe.arrivals)]
        n += 1
        t0 = loop.time()
        r = await client.invoke(n % targets, a.op, a.args, a.client_id, 1.0)
        fast = r.outcome == "ok" and loop.time() - t0 <= slo_p99 / 2
        streak = streak + 1 if fast else 0
        if streak >= 10 * targets:
            return True
        await asyncio.sleep(0.02 if fast else 0.2)
    return False


@dataclass(frozen=True, slots=True)
class CapacitySearch:
    """How the search runs: rates in req/s, times in seconds.

    `timeout` is the client timeout of each request (default: max(2, 5 x SLO)); the
    first `warmup` seconds of each step are not measured. After a failing step the
    search waits (at most `recover` seconds) until a few SLO operations in a row come
    back ok within half the SLO, so one overload does not spill into the next step.
    `busy_retries` is how often a search the machine was too busy for is done again.
    With `confirm`, the failing step that bounds C is run once more before the search
    ends; if it passes then, the search goes on above it (near C a step's p99 is noisy:
    one reference-system step at 600 req/s gave 80 ms in one search and 460 ms in
    another, and a C measured 15% low left the naive profile unbroken by a 1.5 C surge).
    """

    start_rps: float = 100.0
    min_rps: float = 5.0
    max_rps: float = 20_000.0
    step_seconds: float = 3.0
    warmup: float = 0.5
    settle: float = 1.0
    precision: float = 0.1
    max_steps: int = 12
    timeout: float | None = None
    seed: int = 1
    recover: float = 15.0
    busy_retries: int = 1
    confirm: bool = True

    def __post_init__(self) -> None:
        if not (0 < self.precision < 1 and 0 < self.min_rps <= self.start_rps <= self.max_rps):
            raise ValueError(
                "CapacitySearch: need 0 < precision < 1 and 0 < min_rps <= start_rps <= max_rps;"
                f" got precision={self.precision}, min_rps={self.min_rps},"
                f" start_rps={self.start_rps}, max_rps={self.max_rps}"
            )
        if self.step_seconds <= 0 or self.max_steps < 1:
            raise ValueError(
                f"CapacitySearch: need step_seconds > 0 and max_steps >= 1; got"
                f" step_seconds={self.step_seconds}, max_steps={self.max_steps}"
            )


async def _trial(
    client: Client,
    targets: int,
    rate: float,
    *,
    operations: Operations,
    slo: Slo,
    seconds: float,
    warmup: float,
    timeout: float,
    tag: str,
    seed: int,
) -> Trial:
    workload = Workload(
        Constant(rps(rate), seconds),
        operations,
        slo.mix,
        (ClientClass("calibrate", 1.0, Good(timeout, 0, budget=None, failover=False)),),
        seed=seed,
        tag=tag,
    )
    history = History()
    slo_p99 = slo.p99_ms / 1000.0
    config = LoadConfig(targets=targets, drain=timeout + 1.0, max_lateness=min(0.5, slo_p99))
    result = await run_load(
        workload.schedule().arrivals(), client, history, config, writes=operations.writes
    )
    measured = [op for op in history if op.intended >= warmup]
    errors = sum(1 for op in measured if op.outcome != "ok")
    judged = [op for op in measured if op.op == slo.op]
    p99 = percentiles(judged, (99,)).get(99)
    service = percentiles(
        judged, (99,), value=lambda op: None if op.sent is None else op.completed - op.sent
    ).get(99)
    never = sum(1 for op in measured if op.sent is None)
    total = max(1, len(measured))
    reasons = []
    if p99 is None or p99 > slo_p99:
        shown = p99 if p99 is None else round(p99, 4)
        reasons.append(f"{slo.op} p99 {shown} s > {slo_p99:g} s")
    if errors / total > slo.max_errors:
        reasons.append(f"errors {errors}/{total} > {slo.max_errors:.1%}")
    if never or result.lateness_p99 > slo_p99 / 4:
        reasons.append(
            f"generator: {never} never sent, sent-intended p99 {result.lateness_p99 * 1e3:.1f} ms"
        )
    return Trial(
        rate=rate,
        seconds=seconds,
        sent=len(measured) - never,
        ok=len(measured) - errors,
        errors=errors,
        never_sent=never,
        p99=p99,
        service_p99=service,
        lateness_p99=result.lateness_p99,
        passed=p99 is not None and p99 <= slo_p99 and errors / total <= slo.max_errors,
        reason="; ".join(reasons),
    )


def _bounds(steps: Sequence[Trial]) -> tuple[Trial | None, Trial | None]:
    """The highest passing step, and the lowest failing step above it (a failure below a
    pass is noise the pass has outvoted)."""
    passed = [t for t in steps if t.passed]
    lo = max(passed, key=lambda t: t.rate, default=None)
    above = [t for t in steps if not t.passed and (lo is None or t.rate > lo.rate)]
    return lo, min(above, key=lambda t: t.rate, default=None)


async def _search(
    urls: Sequence[str],
    sut: SystemUnderTest,
    slo: Slo,
    key: str,
    sc: CapacitySearch,
    factory: ClientFactory,
    say: Callable[[str], None],
) -> Capacity:
    operations = sut.operations
    assert operations is not None
    slo_p99 = slo.p99_ms / 1000.0
    timeout = sc.timeout if sc.timeout is not None else max(2.0, 5 * slo_p99)
    run_tag = f"calibrate-{os.getpid()}-{time.time_ns()}"
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    probe = _Probe(operations, slo.op)
    steps: list[Trial] = []
    lo: Trial | None = None  # highest passing step
    hi: Trial | None = None  # lowest failing step
    rate = sc.start_rps
    meter = CpuMeter()
    async with factory(urls) as client:
        while len(steps) < sc.max_steps:
            t = await _trial(
                client,
                len(urls),
                rate,
                operations=operations,
                slo=slo,
                seconds=sc.step_seconds,
                warmup=min(sc.warmup, sc.step_seconds / 2),
                timeout=timeout,
                tag=f"{run_tag}-{len(steps)}",
                seed=sc.seed + len(steps),
            )
            steps.append(t)
            say(
                f"calibrate {rate:8.0f}/s: {'pass' if t.passed else 'FAIL'}"
                f" p99 {t.p99 if t.p99 is None else round(t.p99 * 1e3, 1)} ms"
                f" errors {t.errors}/{t.sent + t.never_sent} {t.reason}"
            )
            lo, hi = _bounds(steps)
            if hi is None:
                if rate >= sc.max_rps:
                    break
                rate = min(sc.max_rps, rate * 2)
            elif lo is None:
                if rate <= sc.min_rps:
                    break
                rate = max(sc.min_rps, rate / 2)
            elif (hi.rate - lo.rate) <= sc.precision * lo.rate:
                if not sc.confirm or sum(1 for x in steps if x.rate == hi.rate) > 1:
                    break
                rate = hi.rate  # one failure at the boundary may be noise: once more
            else:
                rate = (lo.rate + hi.rate) / 2
            await asyncio.sleep(sc.settle)
            if not t.passed and not await _recovered(client, len(urls), probe, slo_p99, sc.recover):
                say(f"calibrate: not recovered {sc.recover:g} s after {t.rate:.0f}/s")
    share = meter.stop()
    if lo is None:
        raise CalibrationError(
            f"{key}: no rate down to {steps[-1].rate:g} req/s met {slo.op} p99"
            f" <= {slo_p99:g} s with errors <= {slo.max_errors:.1%}; last step: {steps[-1].reason}"
            " (hint: is the system up and seeded? try a larger p99_ms or timeout)"
        )
    bound: Bound = "system"
    if hi is None:
        bound = "max_rps" if lo.rate >= sc.max_rps else "max_steps"
    elif (
        hi.errors <= slo.max_errors * max(1, hi.sent + hi.never_sent)
        and hi.service_p99 is not None
        and hi.service_p99 <= slo_p99
    ):
        bound = "generator"  # the first failing step failed only by being sent late
    return Capacity(
        rps=lo.rate,
        p99=lo.p99 or 0.0,
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
        key=key,
        steps=tuple(steps),
        slo_p99=slo_p99,
        bound=bound,
        load_before=load_before,
        others=share.others,
        steal=share.steal,
    )


def _share(cap: Capacity) -> CpuShare:
    return CpuShare(0.0, cap.others, cap.steal, cap.load_before)


async def calibrate_async(
    system: Any,
    sut: SystemUnderTest,
    *,
    backend: str = "local",
    search: CapacitySearch = CapacitySearch(),
    cache: bool = True,
    refresh: bool = False,
    path: Path | None = None,
    client_factory: ClientFactory | None = None,
    log: Callable[[str], None] | None = None,
) -> Capacity:
    """Search for the capacity C of a running system (see the module docstring).

    `system` is a running `System` or a sequence of its client-facing URLs.
    """
    if sut.operations is None or sut.slo is None:
        raise CalibrationError(
            f"{sut.path}: no capacity without operations and an SLO (operations:, capacity:)"
        )
    urls = (
        [system]
        if isinstance(system, str)
        else (list(system) if isinstance(system, Sequence) else list(system.endpoints.gateways))
    )
    if not urls:
        raise ValueError("calibrate needs at least one client-facing URL")
    direct = () if isinstance(system, str | Sequence) else system.endpoints.direct()
    key = capacity_key(sut.key(backend, direct))
    file = path or cache_path()
    if cache and not refresh:
        hit = cached_capacity(key, path=file)
        if hit is not None:
            return hit
    say = log or (lambda _msg: None)
    operations = sut.operations
    factory: ClientFactory = client_factory or (lambda u: sut.client(operations, u))
    cap = await _search(urls, sut, sut.slo, key, search, factory, say)
    for _ in range(search.busy_retries):
        if not _share(cap).busy:
            break
        say(f"calibrate: the machine was busy ({_share(cap).describe()}); measuring again")
        await asyncio.sleep(search.settle)
        cap = await _search(urls, sut, sut.slo, key, search, factory, say)
    if _share(cap).busy:
        raise CalibrationError(
            f"the machine was too busy to measure C ({_share(cap).describe()} while the"
            f" search ran; it found {cap.rps:.0f} req/s, not kept): close other work, or give"
            " C with --capacity"
        )
    if cache:
        _store(cap, file)
    return cap


def calibrate(system: Any, sut: SystemUnderTest, **options: Any) -> Capacity:
    """`calibrate_async` in its own event loop (not from inside a running loop)."""
    return run_generator(calibrate_async(system, sut, **options))
