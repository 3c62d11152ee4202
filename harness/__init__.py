"""A pytest-driven chaos-engineering harness: real components with Toxiproxy on their links,
open-loop surge traffic of a system's declared operations, faults, and resilience
invariants judged on the history.

The public API, importable from ``harness`` (each name loads its module on first use, so
``import harness`` stays cheap; names that would shadow a subpackage, such as
``harness.run``, are exported as verbs: ``run_experiment``, ``search_faults``,
``calibrate_capacity``)::

    from harness import RunOptions, load_experiment, run_experiment
    exp = load_experiment("experiments/db-down.yaml")
    result = run_experiment(exp, RunOptions(profile="hardened"))
    result.outcome, result.report

Extension points: a topology's ``client:`` (a ``ClientFactory`` building a ``Client``),
``domain:`` (a ``Domain``), ``state:`` readers of kind ``python`` and invariant kinds a
domain supplies (``Kind``). Bad input raises ``ConfigError`` (file, key path, value, what
was expected), a ``HarnessError`` like every error of the harness's own. Everything else is
internal and may change; docs/architecture.md maps the packages.
"""

from __future__ import annotations

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~3 ms)
if TYPE_CHECKING:
    from typing import Any

_EXPORTS: dict[str, str] = {
    "Backend": "harness.backends",
    "CapacitySearch": "harness.calibrate",
    "Client": "harness.client",
    "ClientFactory": "harness.sut",
    "ConfigError": "harness.errors",
    "Context": "harness.invariants",
    "DataDomain": "harness.domain",
    "Domain": "harness.domain",
    "Experiment": "harness.experiment",
    "HarnessError": "harness.errors",
    "HttpClient": "harness.client",
    "Kind": "harness.invariants",
    "Operations": "harness.operations",
    "Problem": "harness.domain",
    "Reading": "harness.state",
    "Result": "harness.client",
    "RunJournal": "harness.journal",
    "RunOptions": "harness.run",
    "RunResult": "harness.run",
    "ScheduledFault": "harness.faults",
    "SearchJournal": "harness.journal",
    "SearchResult": "harness.search.result",
    "SearchSpace": "harness.search",
    "Switch": "harness.domain",
    "System": "harness.backends",
    "SystemUnderTest": "harness.sut",
    "Topology": "harness.topology",
    "Verdict": "harness.invariants",
    "calibrate_capacity": "harness.calibrate:calibrate",
    "fault_schedules": "harness.search",
    "get_backend": "harness.backends",
    "load_experiment": "harness.experiment",
    "load_sut": "harness.sut",
    "load_topology": "harness.topology",
    "read_journal": "harness.journal:read",
    "run_experiment": "harness.run:run",
    "search_faults": "harness.search.engine:search",
}

__all__ = [
    "Backend",
    "CapacitySearch",
    "Client",
    "ClientFactory",
    "ConfigError",
    "Context",
    "DataDomain",
    "Domain",
    "Experiment",
    "HarnessError",
    "HttpClient",
    "Kind",
    "Operations",
    "Problem",
    "Reading",
    "Result",
    "RunJournal",
    "RunOptions",
    "RunResult",
    "ScheduledFault",
    "SearchJournal",
    "SearchResult",
    "SearchSpace",
    "Switch",
    "System",
    "SystemUnderTest",
    "Topology",
    "Verdict",
    "calibrate_capacity",
    "fault_schedules",
    "get_backend",
    "load_experiment",
    "load_sut",
    "load_topology",
    "read_journal",
    "run_experiment",
    "search_faults",
]


def __getattr__(name: str) -> Any:
    where = _EXPORTS.get(name)
    if where is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    module, _, attr = where.partition(":")
    import importlib

    value = getattr(importlib.import_module(module), attr or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from harness.backends import Backend, System, get_backend
    from harness.calibrate import CapacitySearch
    from harness.calibrate import calibrate as calibrate_capacity
    from harness.client import Client, HttpClient, Result
    from harness.domain import DataDomain, Domain, Problem, Switch
    from harness.errors import ConfigError, HarnessError
    from harness.experiment import Experiment, load_experiment
    from harness.faults import ScheduledFault
    from harness.invariants import Context, Kind, Verdict
    from harness.journal import RunJournal, SearchJournal
    from harness.journal import read as read_journal
    from harness.operations import Operations
    from harness.run import RunOptions, RunResult
    from harness.run import run as run_experiment
    from harness.search import SearchSpace, fault_schedules
    from harness.search.engine import search as search_faults
    from harness.search.result import SearchResult
    from harness.state import Reading
    from harness.sut import ClientFactory, SystemUnderTest, load_sut
    from harness.topology import Topology, load_topology
