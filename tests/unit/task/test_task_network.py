"""Cycle detection on the session's precedence network, hierarchy included."""

from __future__ import annotations

from orchestrator.task.domain import TaskNetwork
from tests.unit.task.conftest import dep, node


def chain() -> TaskNetwork:
    tasks = [node("a"), node("b"), node("c"), node("d")]
    return TaskNetwork(tasks, [dep("a", "b"), dep("b", "c")])


def test_an_edge_closing_a_chain_names_the_whole_cycle() -> None:
    assert chain().cycle_through(dep("c", "a")) == ["a", "b", "c", "a"]


def test_an_edge_closing_a_two_cycle() -> None:
    assert chain().cycle_through(dep("b", "a")) == ["a", "b", "a"]


def test_every_dependency_type_counts() -> None:
    for kind in ("start_to_start", "finish_to_finish", "start_to_finish"):
        assert chain().cycle_through(dep("c", "a", kind)) == ["a", "b", "c", "a"]


def test_edges_that_close_no_cycle() -> None:
    network = chain()
    assert network.cycle_through(dep("a", "c")) is None
    assert network.cycle_through(dep("d", "a")) is None
    assert network.cycle_through(dep("c", "d")) is None


def test_a_cycle_through_a_parent_and_its_subtask() -> None:
    # x waits for parent p, which finishes after its subtask c; c waiting for x closes a cycle.
    tasks = [node("p"), node("c", parent="p"), node("x")]
    network = TaskNetwork(tasks, [dep("p", "x")])
    assert network.cycle_through(dep("x", "c")) == ["c", "p", "x", "c"]
    assert network.cycle_through(dep("x", "p")) == ["p", "x", "p"]


def test_lineage() -> None:
    tasks = [node("p"), node("c", parent="p"), node("g", parent="c"), node("o")]
    network = TaskNetwork(tasks, [])
    assert network.ancestors("g") == ["c", "p"]
    assert network.related_by_lineage("p", "g") and network.related_by_lineage("g", "p")
    assert not network.related_by_lineage("o", "g")


def test_describe_uses_titles_and_ids() -> None:
    network = chain()
    assert network.describe(["a", "b", "a"]) == "task a [a] → task b [b] → task a [a]"
