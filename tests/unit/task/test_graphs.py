"""The cache of session graphs: copies that share nothing, which sessions are worth keeping,
what is let go."""

from __future__ import annotations

import uuid

import pytest

from orchestrator.task.domain import Task, TaskStatus
from orchestrator.task.graphs import (
    MAX_STANDOFF_SECONDS,
    MIN_HITS,
    Graph,
    GraphView,
    SessionGraphs,
)
from orchestrator.task.repository import TaskRepository

from .conftest import T0


def _tasks(session: str, n: int) -> list[Task]:
    return [Task.create(now=T0, session_id=session, title=f"task {i}") for i in range(n)]


def _session() -> str:
    return str(uuid.uuid4())


def test_a_clone_shares_nothing_mutable() -> None:
    task = _tasks(_session(), 1)[0]
    twin = task.clone()
    assert twin == task and twin is not task
    twin.cancel(T0, "no longer needed")
    twin.failed_agent_ids.append("agent-9")
    twin.metadata["k"] = "v"
    assert twin.status is TaskStatus.CANCELLED and task.status is TaskStatus.PENDING
    assert (task.version, task.failed_agent_ids, task.metadata) == (1, [], {})
    assert task.events and twin.events is not task.events


def test_sessions_of_knows_cached_tasks_only() -> None:
    graphs = SessionGraphs()
    first, second = _session(), _session()
    a, b = _tasks(first, 1), _tasks(second, 2)
    graphs.put(Graph(first, 7, a))
    graphs.put(Graph(second, None, b))
    assert graphs.sessions_of([a[0].id, b[1].id]) == sorted([first, second])
    assert graphs.sessions_of([a[0].id, str(uuid.uuid4())]) is None
    assert graphs.current(first, 7) is not None
    assert graphs.current(first, 8) is None
    assert graphs.current(second, None) is not None


def test_least_recently_written_sessions_go_first() -> None:
    graphs = SessionGraphs(max_tasks=5)
    old, used, new = _session(), _session(), _session()
    graphs.put(Graph(old, 1, _tasks(old, 2)))
    graphs.put(Graph(used, 1, _tasks(used, 2)))
    assert graphs.current(old, 1) is not None  # now the most recently used
    graphs.put(Graph(new, 1, _tasks(new, 2)))
    assert len(graphs) == 2
    assert graphs.current(used, 1) is None
    assert graphs.current(old, 1) is not None and graphs.current(new, 1) is not None


def test_a_graph_made_stale_before_it_paid_off_stands_off_longer_each_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("orchestrator.task.graphs.time.monotonic", lambda: clock[0])
    graphs = SessionGraphs()
    session = _session()
    assert graphs.worth_loading(session, 1)  # never loaded: load
    graphs.put(Graph(session, 1, _tasks(session, 3)))
    # Another writer changed the stamp after one batch: stand off for a second.
    assert graphs.current(session, 1) is not None
    assert not graphs.worth_loading(session, 2)
    clock[0] += 0.5
    assert not graphs.worth_loading(session, 2)
    clock[0] += 0.6
    assert graphs.worth_loading(session, 2)
    graphs.put(Graph(session, 2, _tasks(session, 3)))
    assert not graphs.worth_loading(session, 3)  # stale again at once: two seconds now
    clock[0] += 1.5
    assert not graphs.worth_loading(session, 3)
    clock[0] += 0.6
    assert graphs.worth_loading(session, 3)
    # A graph that served its batches is loaded again at once, and the standoff forgotten.
    graph = Graph(session, 3, _tasks(session, 3))
    graphs.put(graph)
    graph.hits = MIN_HITS
    assert graphs.worth_loading(session, 4)
    graphs.put(Graph(session, 4, _tasks(session, 3)))
    assert not graphs.worth_loading(session, 5)
    clock[0] += 1.1
    assert graphs.worth_loading(session, 5)
    assert MAX_STANDOFF_SECONDS >= 1.0


def test_a_session_too_large_is_not_loaded_until_it_changes() -> None:
    graphs = SessionGraphs(max_session_tasks=2)
    session = _session()
    graphs.mark_too_big(session, 4)
    assert not graphs.worth_loading(session, 4)
    assert graphs.worth_loading(session, 5)


async def test_a_committed_batch_becomes_the_cache_and_an_ended_session_is_let_go() -> None:
    graphs = SessionGraphs()
    session = _session()
    tasks = _tasks(session, 2)
    graph = Graph(session, 1, tasks)
    graphs.put(graph)
    view = GraphView(TaskRepository(), {session: graph}, stamp=9)
    (first,) = await view.get_many(None, [tasks[0].id])  # type: ignore[arg-type]
    assert first is not tasks[0]
    read = first.version
    first.cancel(T0, "no longer needed")
    await view.save(None, [(first, read)], [])  # type: ignore[arg-type]
    # Nothing is written to the cache before the batch commits.
    assert graph.tasks[first.id] is tasks[0]
    view.written = {session: [first]}  # as `flush` records what it wrote
    graphs.committed(view)
    assert graph.tasks[first.id] is first and graph.stamp == 9
    assert graphs.current(session, 9) is graph
    # Both top-level tasks ended: the session is let go.
    view = GraphView(TaskRepository(), {session: graph}, stamp=10)
    (second,) = await view.get_many(None, [tasks[1].id])  # type: ignore[arg-type]
    read = second.version
    second.cancel(T0, "no longer needed")
    await view.save(None, [(second, read)], [])  # type: ignore[arg-type]
    view.written = {session: [second]}
    graphs.committed(view)
    assert len(graphs) == 0 and graphs.sessions_of([second.id]) is None
