"""Critical-path ranks: the longest chain of expected hours that starts at each task."""

from __future__ import annotations

from orchestrator.task.domain.ranking import remaining_path_hours


def test_a_lone_task_ranks_by_its_own_hours() -> None:
    assert remaining_path_hours({"a": 2.0}, []) == {"a": 2.0}


def test_a_chain_adds_up_from_its_end() -> None:
    ranks = remaining_path_hours({"a": 1.0, "b": 2.0, "c": 3.0}, [("a", "b"), ("b", "c")])
    assert ranks == {"a": 6.0, "b": 5.0, "c": 3.0}


def test_the_longest_branch_decides() -> None:
    hours = {"start": 1.0, "short": 1.0, "long": 5.0, "end": 2.0}
    edges = [("start", "short"), ("start", "long"), ("short", "end"), ("long", "end")]
    ranks = remaining_path_hours(hours, edges)
    assert ranks["start"] == 1.0 + 5.0 + 2.0
    assert ranks["short"] == 3.0 and ranks["long"] == 7.0


def test_the_head_of_a_long_chain_outranks_a_short_one() -> None:
    hours = {f"long{i}": 1.0 for i in range(10)} | {f"short{i}": 1.0 for i in range(2)}
    edges = [(f"long{i}", f"long{i + 1}") for i in range(9)] + [("short0", "short1")]
    ranks = remaining_path_hours(hours, edges)
    assert ranks["long0"] == 10.0 > ranks["short0"] == 2.0


def test_unknown_tasks_and_negative_hours_are_ignored() -> None:
    ranks = remaining_path_hours({"a": -1.0, "b": 1.0}, [("a", "b"), ("a", "ghost")])
    assert ranks == {"a": 1.0, "b": 1.0}


def test_a_cycle_leaves_its_tasks_with_their_own_hours() -> None:
    ranks = remaining_path_hours(
        {"a": 1.0, "b": 2.0, "c": 1.0}, [("a", "b"), ("b", "a"), ("c", "a")]
    )
    assert ranks["a"] == 1.0 and ranks["b"] == 2.0
