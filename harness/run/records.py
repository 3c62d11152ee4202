"""What a run records beside its verdicts: the versions of everything it ran, the
system's shape and addresses, its metrics in figures, and the components' logs."""

from __future__ import annotations

import functools
import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

from harness.backends import LogReadable, System
from harness.journal import MetricsRecord, TopologyRecord
from harness.load import LOOP
from harness.metrics.store import Metrics
from harness.store import RunDir
from harness.sut import SystemUnderTest
from harness.tools import find_binary

__all__ = ["metrics_record", "save_logs", "topology_record", "versions"]


def metrics_record(m: Metrics | None, path: Path) -> MetricsRecord | None:
    """What the metrics file of the run holds, in figures."""
    if m is None:
        return None
    return MetricsRecord(
        file=path.name,
        sources=dict(m.sources),
        every_s=m.every,
        ticks=m.ticks,
        series=sum(len(by) for by in m.series.values()),
        samples=m.samples,
        read_ms={c: round(v, 2) for c, v in m.read_ms.items()},
        errors={c: len(e) for c, e in m.errors.items()},
        cpu_ms_per_tick=None if m.cpu_ms_per_tick is None else round(m.cpu_ms_per_tick, 2),
    )


def topology_record(system: System | None) -> TopologyRecord | None:
    """The running system's shape and addresses (passwords are left out by the journal)."""
    if system is None:
        return None
    ep = system.endpoints
    return TopologyRecord(
        name=system.topology.name,
        params=dict(system.topology.params),
        profiles=system.topology.profiles,
        components=dict(ep.components),
        links=dict(ep.links),
        gateways=tuple(ep.gateways),
        toxiproxy=ep.toxiproxy,
    )


def save_logs(system: System | None, run_dir: RunDir) -> None:
    """The last 200 lines of every component's log, and Toxiproxy's, into the run."""
    if system is None or not isinstance(system, LogReadable):
        return
    names = [*system.endpoints.components, "toxiproxy"]
    logs = {}
    for name in names:
        try:
            logs[name] = system.logs(name, 200)
        except (OSError, KeyError, RuntimeError) as exc:
            logs[name] = f"(no log: {type(exc).__name__}: {exc})"
    run_dir.save_logs(logs)


@functools.cache
def _binary_version(name: str) -> str:
    try:
        path = find_binary(name)
    except Exception as exc:  # a missing binary is reported, not fatal
        return f"unknown ({exc})"
    for args in (["--version"], ["-v"], ["-V"]):
        try:
            res = subprocess.run([path, *args], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            continue
        text = (res.stdout or res.stderr).strip()
        if res.returncode == 0 and text:
            return text.splitlines()[0]
    return "unknown"


def _binaries(sut: SystemUnderTest) -> list[str]:
    """The programs the topology starts by name: `${bin:NAME}` and bare commands on PATH."""
    names: list[str] = []
    for comp in sut.topology.components:
        names += re.findall(r"\$\{bin:([^}]+)\}", " ".join(comp.command))
        first = comp.command[0]
        if (
            "$" not in first
            and "/" not in first
            and shutil.which(first)
            and first not in ("sh", "env")
        ):
            names.append(first)
    return list(dict.fromkeys(names))


def versions(system: System | None, sut: SystemUnderTest) -> dict[str, str]:
    """Versions of the harness, the generator's loop, Toxiproxy and every program the
    topology starts by name, for the journal."""
    try:
        harness = importlib.metadata.version("xian-chaos-harness")
    except importlib.metadata.PackageNotFoundError:
        harness = "unknown"
    out = {"harness": harness, "generator loop": LOOP, "python": sys.version.split()[0]}
    out.update({name: _binary_version(name) for name in _binaries(sut)})
    if system is not None:
        try:
            out["toxiproxy"] = system.toxiproxy.version()
        except Exception as exc:  # the journal says so; the run goes on
            out["toxiproxy"] = f"unknown ({type(exc).__name__})"
    return out
