"""How a pause's evidence reads process states."""

from __future__ import annotations

from harness.faults.process import all_stopped, none_stopped


def test_a_tree_is_stopped_when_every_process_is_in_state_t() -> None:
    assert all_stopped({1: "T", 2: "T", 3: "t"})


def test_a_child_that_exited_as_the_stop_came_does_not_count_as_running() -> None:
    # seen in CI: PostgreSQL paused while a backend exited -> TTTTTTZ
    assert all_stopped({1: "T", 2: "T", 3: "Z"})


def test_a_running_or_sleeping_process_is_not_stopped() -> None:
    assert not all_stopped({1: "T", 2: "S"})
    assert not all_stopped({1: "T", 2: "R"})


def test_nothing_stopped_is_not_stopped() -> None:
    assert not all_stopped({})
    assert not all_stopped({1: "Z"})


def test_a_resumed_tree_runs_when_no_process_is_stopped() -> None:
    assert none_stopped({1: "S", 2: "R", 3: "Z"})
    assert not none_stopped({1: "S", 2: "T"})
    assert not none_stopped({})
