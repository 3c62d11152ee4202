"""Writing a search's smallest failing schedule as an experiment file that replays it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.experiment import Experiment
from harness.faults import ScheduledFault
from harness.search.space import to_yaml

__all__ = ["write_minimal"]


def write_minimal(
    experiment: Experiment,
    profile: str,
    seed: int,
    schedule: tuple[ScheduledFault, ...],
    broken: tuple[str, ...],
    failed: str,
    target: Path,
    replay: str,
) -> None:
    """The experiment file with `schedule` as its fixed faults, ready to run; `broken` are
    the invariants it broke in `failed` ("2 of 2") runs."""
    data: dict[str, Any] = yaml.safe_load(Path(experiment.path).read_text(encoding="utf-8"))
    data.pop("search", None)
    data["name"] = f"{experiment.name}-found"
    data["description"] = f"minimal failing schedule found by searching {experiment.name}"
    data["seed"] = seed
    system = dict(data.get("system") or {})
    system["profile"] = profile
    topo = system.get("topology")
    if topo and topo != "reference":
        system["topology"] = str((Path(experiment.path).resolve().parent / topo).resolve())
    data["system"] = system
    data["faults"] = to_yaml(tuple(experiment.faults) + schedule)
    data["expect"] = {profile: {"fail": list(broken), "others": "any"}}
    head = (
        f"# Found by the fault search of {experiment.path} on {profile} (seed {seed}):\n"
        f"# the smallest schedule that broke {', '.join(broken)} in {failed} runs.\n"
        f"# Replay: {replay}\n"
        f"#   ('as expected' means the failure reproduced)\n"
    )
    order = ["name", "description", "seed", "system", "workload", "faults", "invariants"]
    ordered = {k: data[k] for k in order if k in data}
    ordered.update({k: v for k, v in data.items() if k not in ordered})
    body = yaml.safe_dump(ordered, sort_keys=False, default_flow_style=None, width=100)
    target.write_text(head + body, encoding="utf-8")
