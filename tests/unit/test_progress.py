"""The live progress line: its text, its meter over a growing history, quiet off a terminal."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass

from harness.progress import Meter, Snapshot, enabled, format_line, live


@dataclass(frozen=True)
class FakeOp:
    outcome: str


@dataclass(frozen=True)
class Phase:
    name: str
    start: float


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_line() -> None:
    s = Snapshot("surge", 12.34, 20.0, 1184.4, 34.0, 0.9712, ("kill gateway-a", "db_loss"))
    assert format_line(s) == (
        "surge       12.3/20.0 s  rate   1184/s  ok  97.1%  errors    34/s"
        "  faults: kill gateway-a, db_loss"
    )
    quiet = Snapshot("-", 0.0, 20.0, 0.0, 0.0, None, ())
    assert "ok   -" in format_line(quiet) and "faults: none" in format_line(quiet)
    assert len(format_line(s, width=30)) == 30 and format_line(s, width=30).endswith("…")


def test_meter_reads_only_new_ops() -> None:
    ops: list[FakeOp] = []
    clock = Clock()
    faults = ["kill gateway-a"]
    meter = Meter(
        ops,
        total=20.0,
        phases=[Phase("steady", 0.0), {"name": "surge", "start": 5.0}],
        faults=lambda: faults,
        clock=clock,
    )
    ops += [FakeOp("ok")] * 8 + [FakeOp("fail")] * 2
    clock.now += 2.0
    s = meter.snapshot()
    assert (s.phase, s.elapsed, s.rate, s.errors, s.ok_fraction) == ("steady", 2.0, 5.0, 1.0, 0.8)
    assert s.faults == ("kill gateway-a",)
    ops += [FakeOp("ok")] * 10
    clock.now += 4.0
    faults.clear()
    s = meter.snapshot()
    assert (s.phase, s.rate, s.errors, s.ok_fraction, s.faults) == ("surge", 2.5, 0.0, 0.9, ())


def test_meter_survives_a_broken_fault_reader() -> None:
    def broken() -> list[str]:
        raise RuntimeError("gone")

    assert Meter([], total=1.0, faults=broken).snapshot().faults == ("?",)


def test_enabled_only_on_a_terminal_unless_forced() -> None:
    assert not enabled(io.StringIO())
    assert enabled(Tty())
    assert enabled(io.StringIO(), force=True)
    assert not enabled(Tty(), force=False)


def test_live_writes_and_clears_the_line_on_a_terminal() -> None:
    out = Tty()
    ops = [FakeOp("ok")]

    async def go() -> None:
        async with live(ops, total=1.0, stream=out, interval=0.01) as meter:
            assert meter is not None
            await asyncio.sleep(0.05)

    asyncio.run(go())
    text = out.getvalue()
    assert "rate" in text and "faults: none" in text
    assert text.endswith("\r\x1b[K")


def test_live_is_silent_off_a_terminal() -> None:
    out = io.StringIO()

    async def go() -> None:
        async with live([], total=1.0, stream=out, interval=0.01) as meter:
            assert meter is None
            await asyncio.sleep(0.03)

    asyncio.run(go())
    assert out.getvalue() == ""
