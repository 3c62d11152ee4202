"""CPU the rest of the machine takes: over an interval, how many cores processes outside
this run used, and how many the hypervisor stole, read from /proc.

The load generator, Toxiproxy and the system under test share the machine's cores; a
capacity measured while something else was busy is a capacity of less machine. A
`CpuMeter` tells how much less::

    meter = CpuMeter()                 # this process and everything it started
    ...                                # calibrate
    share = meter.stop()
    if share.busy: ...                 # others used > BUSY_OTHERS cores, or steal > BUSY_STEAL

On a machine without /proc the meter reports nothing (`others` and `steal` are None).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from harness.sessions import descendants

__all__ = ["BUSY_OTHERS", "BUSY_STEAL", "CpuMeter", "CpuShare"]

BUSY_OTHERS = 0.25  # cores used by other processes, on average, that make a machine busy
BUSY_STEAL = 0.10  # cores stolen by the hypervisor, on average
_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class CpuShare:
    """What the machine did over `seconds` besides this run (cores, on average)."""

    seconds: float
    others: float | None
    steal: float | None
    load1: float | None

    @property
    def busy(self) -> bool:
        return (self.others or 0.0) > BUSY_OTHERS or (self.steal or 0.0) > BUSY_STEAL

    def describe(self) -> str:
        if self.others is None:
            return "machine load unknown"
        text = f"other processes used {self.others:.2f} cores"
        if self.steal:
            text += f", the hypervisor stole {self.steal:.2f}"
        if self.load1 is not None:
            text += f" (load average {self.load1:.2f})"
        return text


def _machine() -> tuple[int, int] | None:
    """(busy ticks, steal ticks) of the whole machine since boot."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    v = [int(x) for x in fields[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = v[:7]
    steal = v[7] if len(v) > 7 else 0
    return user + nice + system + irq + softirq, steal


def _tree(root: int) -> int:
    """CPU ticks of `root` and its descendants, with the children they reaped."""
    total = 0
    for pid in (root, *descendants(root)):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        parts = stat[stat.rindex(")") + 2 :].split()
        total += sum(int(x) for x in parts[11:15])  # utime stime cutime cstime
    return total


class CpuMeter:
    """Measures from construction to `stop()` (see the module docstring)."""

    def __init__(self, root: int | None = None) -> None:
        self.root = os.getpid() if root is None else root
        self.started = time.monotonic()
        self._machine = _machine()
        self._tree = _tree(self.root) if self._machine else 0

    def stop(self) -> CpuShare:
        seconds = max(1e-6, time.monotonic() - self.started)
        now = _machine()
        load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        if self._machine is None or now is None:
            return CpuShare(seconds, None, None, load1)
        busy = now[0] - self._machine[0]
        steal = now[1] - self._machine[1]
        mine = _tree(self.root) - self._tree
        others = max(0.0, (busy - mine) / _HZ / seconds)
        return CpuShare(seconds, round(others, 3), round(steal / _HZ / seconds, 3), load1)
