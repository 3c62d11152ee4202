"""The fault search: Hypothesis generates fault schedules within a space an experiment
declares (`space`), runs each as a short example on one reused system (`examples`) and
shrinks what fails (`engine`); what it found (`result`) is written as a journal and a
summary (`record`), and the smallest failing schedule as a runnable file (`minimal`).

This package's `__init__` imports nothing heavier than the space, so the experiment
loader can read `search:` sections without pulling in the run machinery.
"""

from harness.search.space import (
    KIND_ORDER,
    MAGNITUDES,
    SearchSpace,
    SearchSpec,
    describe,
    fault_schedules,
    parse_search,
    schedule_key,
    to_yaml,
)

__all__ = [
    "KIND_ORDER",
    "MAGNITUDES",
    "SearchSpace",
    "SearchSpec",
    "describe",
    "fault_schedules",
    "parse_search",
    "schedule_key",
    "to_yaml",
]
