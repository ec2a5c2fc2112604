"""Critical path, slack, order and ready set on graphs worked out by hand in each test."""

from __future__ import annotations

import math

import pytest

from orchestrator.task.domain import Hold, TaskNetwork, schedule
from tests.unit.task.conftest import dep, node

# A = 2 h (sigma 1/3), B = 4 h (sigma 4/3), C = 3 h (sigma 1/3), D = 1 h (sigma 0).
A = ("a", (1.0, 2.0, 3.0))
B = ("b", (2.0, 3.0, 10.0))
C = ("c", (2.0, 3.0, 4.0))
D = ("d", (1.0, 1.0, 1.0))


def diamond(**status: str) -> TaskNetwork:
    """a → b → d and a → c → d."""
    tasks = [
        node(i, e, status=status.get(i, "pending"), order=n)
        for n, (i, e) in enumerate((A, B, C, D))
    ]
    return TaskNetwork(tasks, [dep("a", "b"), dep("a", "c"), dep("b", "d"), dep("c", "d")])


def test_diamond_critical_path_slack_and_sigma() -> None:
    s = schedule(diamond())
    assert s.critical_path == ["a", "b", "d"]
    assert s.expected_hours == pytest.approx(7.0)
    assert s.sigma_hours == pytest.approx(math.sqrt(1 / 9 + 16 / 9 + 0))
    es = {k: t.earliest_start for k, t in s.timings.items()}
    ls = {k: t.latest_start for k, t in s.timings.items()}
    assert es == pytest.approx({"a": 0, "b": 2, "c": 2, "d": 6})
    assert ls == pytest.approx({"a": 0, "b": 2, "c": 3, "d": 6})
    assert s.timings["c"].slack == pytest.approx(1.0)
    assert s.order == ["a", "b", "c", "d"]


def test_a_lag_lengthens_the_path() -> None:
    tasks = [node("a", (2, 2, 2)), node("b", (3, 3, 3))]
    s = schedule(TaskNetwork(tasks, [dep("a", "b", lag=1.5)]))
    assert s.timings["b"].earliest_start == pytest.approx(3.5)
    assert s.expected_hours == pytest.approx(6.5)
    assert s.critical_path == ["a", "b"]


def test_start_to_start_counts_only_the_lag_of_the_predecessor() -> None:
    # b may start 1 h after a starts: b runs 1..6, a runs 0..4; the path is the lag plus b.
    tasks = [node("a", (2, 4, 6)), node("b", (5, 5, 5))]
    s = schedule(TaskNetwork(tasks, [dep("a", "b", "start_to_start", 1.0)]))
    assert s.timings["b"].earliest_start == pytest.approx(1.0)
    assert s.expected_hours == pytest.approx(6.0)
    assert s.critical_path == ["a", "b"]
    # a's duration is not on the path (entered and left at its start), b's sigma is 0.
    assert s.sigma_hours == pytest.approx(0.0)


def test_finish_to_finish_holds_the_successor_finish() -> None:
    # b (1 h) finishes when a (4 h, sigma 2/3) finishes at the earliest: b starts at 3.
    tasks = [node("a", (2, 4, 6)), node("b", (1, 1, 1))]
    s = schedule(TaskNetwork(tasks, [dep("a", "b", "finish_to_finish")]))
    assert s.timings["b"].earliest_start == pytest.approx(3.0)
    assert s.expected_hours == pytest.approx(4.0)
    assert s.sigma_hours == pytest.approx(2 / 3)


def test_start_to_finish_never_moves_a_start_before_zero() -> None:
    tasks = [node("a", (2, 2, 2)), node("b", (3, 3, 3))]
    s = schedule(TaskNetwork(tasks, [dep("a", "b", "start_to_finish")]))
    assert s.timings["b"].earliest_start == 0.0
    assert s.expected_hours == pytest.approx(3.0)
    assert s.critical_path == ["b"]


def test_parents_pass_their_dependencies_to_their_subtasks() -> None:
    # y (4 h) → parent p {c1 (2 h) → c2 (3 h)} → x (1 h): 4 + 2 + 3 + 1 = 10 h.
    tasks = [
        node("y", (4, 4, 4), order=0),
        node("p", (9, 9, 9), order=1),
        node("c1", (2, 2, 2), parent="p", order=2),
        node("c2", (3, 3, 3), parent="p", order=3),
        node("x", (1, 1, 1), order=4),
    ]
    deps = [dep("y", "p"), dep("c1", "c2"), dep("p", "x")]
    s = schedule(TaskNetwork(tasks, deps))
    assert s.critical_path == ["y", "c1", "c2", "x"]
    assert s.expected_hours == pytest.approx(10.0)
    assert s.order == ["y", "c1", "c2", "x"]
    assert s.timings["p"].earliest_start == pytest.approx(4.0)
    assert s.timings["p"].slack == pytest.approx(0.0)
    assert s.timings["x"].earliest_start == pytest.approx(9.0)


def test_finished_work_counts_as_zero_remaining() -> None:
    s = schedule(diamond(a="completed", b="completed"))
    # What is left: c (3 h) then d (1 h); b is done, so c is now critical.
    assert s.critical_path == ["c", "d"]
    assert s.expected_hours == pytest.approx(4.0)
    assert s.sigma_hours == pytest.approx(1 / 3)
    done = schedule(diamond(a="completed", b="completed", c="completed", d="completed"))
    assert done.critical_path == [] and done.expected_hours == 0.0


def test_work_awaiting_approval_is_done() -> None:
    tasks = [node("a", (5, 5, 5), status="blocked", hold=Hold.APPROVAL), node("b", (1, 1, 1))]
    s = schedule(TaskNetwork(tasks, [dep("a", "b")]))
    assert s.expected_hours == pytest.approx(1.0) and s.critical_path == ["b"]


def test_order_breaks_ties_by_priority() -> None:
    tasks = [
        node("low", priority="low", order=0),
        node("high", priority="high", order=1),
        node("after-low", priority="blocker", order=2),
        node("normal", priority="normal", order=3),
    ]
    s = schedule(TaskNetwork(tasks, [dep("low", "after-low")]))
    assert s.order == ["high", "normal", "low", "after-low"]


def test_ready_set_puts_the_critical_path_first_then_priority() -> None:
    tasks = [
        node("short-blocker", (1, 1, 1), status="ready", priority="blocker", order=0),
        node("long-low", (8, 8, 8), status="ready", priority="low", order=1),
        node("short-normal", (1, 1, 1), status="ready", priority="normal", order=2),
        node("waiting", (1, 1, 1), order=3),
    ]
    s = schedule(TaskNetwork(tasks, [dep("long-low", "waiting")]))
    assert s.critical_path == ["long-low", "waiting"]
    assert s.ready == ["long-low", "short-blocker", "short-normal"]


def test_parents_are_never_ready_nor_in_the_order() -> None:
    tasks = [node("p", status="ready"), node("c", status="ready", parent="p")]
    s = schedule(TaskNetwork(tasks, []))
    assert s.ready == ["c"] and s.order == ["c"] and s.critical_path == ["c"]


def test_empty_graph() -> None:
    s = schedule(TaskNetwork([], []))
    assert (s.critical_path, s.order, s.ready, s.expected_hours) == ([], [], [], 0.0)


def test_ten_thousand_tasks_schedule_whole() -> None:
    """A layered 10,000-task graph is scheduled in full (its speed is `make bench`'s concern)."""
    width = 100
    tasks = [node(f"t{i}", (1, 2, 4), order=i) for i in range(10_000)]
    deps = [
        dep(f"t{i - width + (i % 3)}", f"t{i}")
        for i in range(width, 10_000)
        if i - width + (i % 3) < i
    ]
    s = schedule(TaskNetwork(tasks, deps))
    assert len(s.order) == 10_000 and len(set(s.order)) == 10_000
    # The critical path is a chain of the graph's edges, at least one task per layer.
    edges = {(d.predecessor_id, d.successor_id) for d in deps}
    assert len(s.critical_path) >= 100
    assert all(pair in edges for pair in zip(s.critical_path, s.critical_path[1:], strict=False))
