"""The fault layer (the nemesis): faults on links and processes, scheduled on the
workload's clock, each proving it took effect.

Faults are frozen dataclasses behind one small protocol, :class:`Fault`
(``inject(system) -> Evidence``, ``heal(system) -> Evidence``, ``describe()``):

===================  ===========================================  ==========================
YAML kind            class                                        evidence
===================  ===========================================  ==========================
``latency``          :class:`Latency` (ms, jitter_ms)             round trip through the link
``bandwidth``        :class:`Bandwidth` (kb_per_s)                transfer time of a bulk reply
``slow_close``       :class:`SlowClose` (delay_ms)                time to the far side's close
``timeout``          :class:`Timeout` (ms; 0 holds forever)       no answer through the link
``reset_peer``       :class:`ResetPeer` (after_ms)                connection reset, no answer
``slicer``           :class:`Slicer` (average_bytes, ...)         answer arrives in pieces
``limit_data``       :class:`LimitData` (bytes)                   connection closed early
``down``             :class:`LinkDown`                            connections refused
``kill``             :class:`Kill` (component, signal)            /proc gone, port refuses
``crash``            :class:`Crash` (a gateway, SIGKILL)          + client edge gets no answer
``pause``            :class:`Pause` (SIGSTOP/SIGCONT)             every process in state T
``restart``          :class:`Restart`                             new pid, probe answers
``db_loss``          :class:`DbLoss`                              killed, data deleted, rows
                                                                  counted before/after recovery
``lose_unsynced``    :class:`LoseUnsynced` (a power loss)         killed, unsynced bytes on its
                                                                  LazyFS dirs discarded (count)
===================  ===========================================  ==========================

Toxics take ``link`` (``source->target``; either side may be a group: ``app->postgres``),
``stream`` (``upstream``/``downstream``/``both``) and ``toxicity`` (0..1). A schedule runs
faults at given offsets from the workload's ``t0`` and always heals on exit::

    faults = parse_schedule(Node(data["faults"], "x.yaml", "faults"), topology)
    with run_schedule(system, faults, t0) as nemesis:
        ...  # the workload, on the same t0
    nemesis.report.raise_if_ineffective()   # or journal nemesis.report.to_json()
"""

from harness.faults.base import (
    Fault,
    FaultError,
    FaultNotEffective,
    resolve_components,
    resolve_links,
)
from harness.faults.database import DbLoss
from harness.faults.evidence import Check, Evidence
from harness.faults.network import (
    TOXICS,
    Bandwidth,
    Latency,
    LimitData,
    LinkDown,
    ResetPeer,
    Slicer,
    SlowClose,
    Timeout,
    Toxic,
)
from harness.faults.parse import KINDS, parse_fault, parse_schedule
from harness.faults.power import LoseUnsynced
from harness.faults.process import Crash, Kill, Pause, Restart
from harness.faults.schedule import (
    FaultTrace,
    ScheduledFault,
    ScheduleReport,
    ScheduleRun,
    run_schedule,
)

__all__ = [
    "KINDS",
    "TOXICS",
    "Bandwidth",
    "Check",
    "Crash",
    "DbLoss",
    "Evidence",
    "Fault",
    "FaultError",
    "FaultNotEffective",
    "FaultTrace",
    "Kill",
    "Latency",
    "LimitData",
    "LinkDown",
    "LoseUnsynced",
    "Pause",
    "ResetPeer",
    "Restart",
    "ScheduleReport",
    "ScheduleRun",
    "ScheduledFault",
    "Slicer",
    "SlowClose",
    "Timeout",
    "Toxic",
    "parse_fault",
    "parse_schedule",
    "resolve_components",
    "resolve_links",
    "run_schedule",
]
