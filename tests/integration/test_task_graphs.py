"""The task service's cached session graphs against real PostgreSQL: stamps kept by triggers,
cached reads that agree with the database's, replicas that see each other's writes, and a
failed batch that leaves the cache as it leaves the database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from orchestrator.task.choreography.scheduler import (
    _CACHED_SESSIONS,
    _ELIGIBLE,
    RUNNABLE_SESSIONS,
    Eligible,
    eligible_in,
)
from orchestrator.task.domain import Peer, Task, TaskStatus, Usage
from orchestrator.task.domain.scheduling import finish_blockers
from orchestrator.task.graphs import MIN_HITS, Graph, GraphView
from orchestrator.task.repository import TaskRepository
from orchestrator.task.routing import Needs, RankedAgent
from orchestrator.task.service import TaskService

pytestmark = pytest.mark.timeout(90)


class _NoAgents:
    """Routing is not under test: every task here is assigned to a named agent."""

    async def ranked(self, needs: Needs, *, fresh: bool = False) -> list[RankedAgent]:
        return []

    def forget(self) -> None:
        return None


@pytest.fixture
async def replicas(pool: asyncpg.Pool, task_service: str) -> list[TaskService]:
    """Two task services on one database, as two replicas are (`task_service` migrated it)."""
    return [TaskService(pool, _NoAgents()), TaskService(pool, _NoAgents())]


async def _run(service: TaskService, task_id: str, agent: str = "agent-1") -> Task:
    """Assigns, starts and completes the task through the group commit."""
    _, token = await service.change(
        task_id, None, lambda t, now, _: t.assign(now, agent, 60, actor="tests"), quiet=True
    )
    await service.change(task_id, None, lambda t, now, _: t.start(now, token, actor="tests"))

    def complete(t: Task, now: datetime, peers: Mapping[str, Peer]) -> None:
        blockers = finish_blockers(t, peers)
        t.complete(now, token, result={}, usage=Usage(), changes=None, finish_blockers=blockers)

    done, _ = await service.change(task_id, None, complete, with_peers=True)
    return done


async def _plan(service: TaskService, specs: list[dict[str, Any]]) -> tuple[str, list[Task]]:
    session = str(uuid.uuid4())
    return session, await service.create_many(session, specs)


def _diamond() -> list[dict[str, Any]]:
    """A root split into a, b and c; c waits for a and b."""
    root, a, b, c = (str(uuid.uuid4()) for _ in range(4))
    return [
        {"task_id": root, "title": "Root"},
        {"task_id": a, "title": "A", "parent_id": root},
        {"task_id": b, "title": "B", "parent_id": root},
        {"task_id": c, "title": "C", "parent_id": root, "depends_on": [a, b]},
    ]


async def _stamp(pool: asyncpg.Pool, session_id: str) -> int | None:
    value = await pool.fetchval(
        "SELECT stamp FROM task.session_stamps WHERE session_id = $1", session_id
    )
    return int(value) if value is not None else None


async def test_every_write_of_a_sessions_tasks_stamps_it_with_its_transaction(
    pool: asyncpg.Pool, replicas: list[TaskService]
) -> None:
    session, tasks = await _plan(replicas[0], _diamond())
    created = await _stamp(pool, session)
    assert created is not None
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE task.tasks SET title = 'Renamed' WHERE id = $1", tasks[1].id)
        own = int(await conn.fetchval("SELECT pg_current_xact_id()::text::bigint"))
    assert await _stamp(pool, session) == own
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "DELETE FROM task.dependencies WHERE successor_id = $1 AND predecessor_id = $2",
            tasks[3].id,
            tasks[1].id,
        )
        deleted = int(await conn.fetchval("SELECT pg_current_xact_id()::text::bigint"))
    assert await _stamp(pool, session) == deleted
    # A statement that writes nothing leaves the stamp alone.
    await pool.execute("UPDATE task.tasks SET title = 'x' WHERE id = $1", str(uuid.uuid4()))
    assert await _stamp(pool, session) == deleted


async def test_a_stamp_checked_save_writes_nothing_when_the_stamp_moved(
    pool: asyncpg.Pool, replicas: list[TaskService]
) -> None:
    session, tasks = await _plan(replicas[0], _diamond())
    stamp = await _stamp(pool, session)
    repo = TaskRepository()
    (task,) = await replicas[0].session_tasks(session, [tasks[1].id])
    read = task.version
    task.cancel(replicas[0].now(), "by the test")
    async with pool.acquire() as conn, conn.transaction():
        refused = await repo.save_if_stamped(conn, [(task, read)], [], {session: (stamp or 0) - 1})
        assert refused is None
        assert (await repo.get(conn, task.id)).version == read, "nothing written"
        own = await repo.save_if_stamped(conn, [(task, read)], [], {session: stamp})
        assert own == int(await conn.fetchval("SELECT pg_current_xact_id()::text::bigint"))
    assert await _stamp(pool, session) == own
    assert (await replicas[0].get(task.id)).status is TaskStatus.CANCELLED


async def test_cached_reads_agree_with_the_database(
    pool: asyncpg.Pool, replicas: list[TaskService]
) -> None:
    service = replicas[0]
    session, tasks = await _plan(service, _diamond())
    root, a, b, c = (t.id for t in tasks)
    await _run(service, a)
    repo = TaskRepository()
    async with pool.acquire() as conn, conn.transaction():
        loaded = await repo.whole_session(conn, session, 100)
        assert loaded is not None
        view = GraphView(repo, {session: Graph(session, None, *loaded)}, stamp=0)
        for ids in ([root], [a], [b], [c], [a, b], [root, c], [str(uuid.uuid4())]):
            assert _shape(await view.get_many(conn, ids)) == _shape(await repo.get_many(conn, ids))
            assert _shape(await view.around(conn, ids)) == _shape(await repo.around(conn, ids))
            assert await view.peers(conn, ids, [root]) == await repo.peers(conn, ids, [root])
            assert await view.running_with_open_children(
                conn, ids
            ) == await repo.running_with_open_children(conn, ids)


def _shape(tasks: list[Task]) -> list[tuple[str, int, TaskStatus]]:
    return sorted((t.id, t.version, t.status) for t in tasks)


async def test_a_replica_sees_what_another_wrote(
    pool: asyncpg.Pool, replicas: list[TaskService]
) -> None:
    one, two = replicas
    session, tasks = await _plan(one, _diamond())
    _, a, b, c = (t.id for t in tasks)
    await _run(one, a)  # `one` now holds the session's graph
    graphs = one._writer.graphs
    assert graphs.sessions_of([a, b, c]) == [session]
    graph = graphs.current(session, await _stamp(pool, session))
    assert graph is not None
    graph.hits = MIN_HITS  # as if it had served many batches: worth loading again
    await _run(two, b)  # ... which this makes stale: C is READY now
    loads = graphs.loads
    assigned, _ = await one.change(
        c, None, lambda t, now, _: t.assign(now, "agent-2", 60, actor="tests"), quiet=True
    )
    assert assigned.status is TaskStatus.ASSIGNED
    assert graphs.loads == loads + 1
    stored = await one.get(c)
    assert (stored.status, stored.version) == (assigned.status, assigned.version)
    # The stamp this replica left proves its copy current: the next change loads nothing.
    await one.change(c, assigned.version, lambda t, now, _: t.start(now, 1, actor="tests"))
    assert graphs.loads == loads + 1
    assert (await one.get(c)).status is TaskStatus.IN_PROGRESS


async def test_replicas_writing_one_session_in_turn_read_the_database(
    pool: asyncpg.Pool, replicas: list[TaskService]
) -> None:
    """A graph made stale soon after its load is not loaded again at once: the session is read
    from the database for a while, and every change still sees the other replica's."""
    one, two = replicas
    _, tasks = await _plan(one, _diamond())
    _, a, b, c = (t.id for t in tasks)
    await _run(one, a)
    await _run(two, b)
    loads = one._writer.graphs.loads
    assigned, _ = await one.change(
        c, None, lambda t, now, _: t.assign(now, "agent-2", 60, actor="tests"), quiet=True
    )
    assert assigned.status is TaskStatus.ASSIGNED
    assert one._writer.graphs.loads == loads
    assert one._writer.graphs.sessions_of([c]) is None
    assert (await one.get(c)).version == assigned.version


async def test_a_failed_batch_leaves_the_cache_as_it_leaves_the_database(
    pool: asyncpg.Pool, replicas: list[TaskService], monkeypatch: pytest.MonkeyPatch
) -> None:
    service = replicas[0]
    session, tasks = await _plan(service, [*_diamond(), {"title": "D"}])
    _, a, b, _, d = (t.id for t in tasks)
    await _run(service, a)
    failures: list[bool] = []
    save = TaskRepository.save_if_stamped

    async def refuse_once(self: TaskRepository, conn: Any, *args: Any) -> int | None:
        if not failures:
            failures.append(True)
            raise asyncpg.exceptions.SerializationError("refused once, by the test")
        return await save(self, conn, *args)

    # The graph is held: the batch's one write is the stamp-checked save.
    monkeypatch.setattr(TaskRepository, "save_if_stamped", refuse_once)
    # Both changes meet in one batch, which fails as a whole; each is retried alone.
    (assigned, _), (other, _) = await asyncio.gather(
        *(
            service.change(
                ident,
                None,
                lambda t, now, _: t.assign(now, "agent-3", 60, actor="tests"),
                quiet=True,
            )
            for ident in (b, d)
        )
    )
    assert failures
    stored = {t.id: t for t in await service.session_tasks(session, [])}
    assert (stored[b].version, stored[d].version) == (assigned.version, other.version)
    assert stored[b].status is stored[d].status is TaskStatus.ASSIGNED
    graph = service._writer.graphs.current(session, await _stamp(pool, session))
    assert graph is not None, "the cache is still current"
    assert {i: t.version for i, t in graph.tasks.items()} == {
        i: t.version for i, t in stored.items()
    }


async def test_the_scheduler_reads_the_same_ready_tasks_from_a_cached_graph(
    pool: asyncpg.Pool, replicas: list[TaskService]
) -> None:
    """What the scheduler's query returns of a session and what it takes from the session's
    cached graph agree: READY leaves only, none leased, none in a retry backoff, with the same
    order, urgency and routing needs."""
    service = replicas[0]
    root, waiting, failing = (str(uuid.uuid4()) for _ in range(3))
    session, tasks = await _plan(
        service,
        [
            {"task_id": root, "title": "Root"},
            {"task_id": failing, "title": "Flaky", "parent_id": root, "max_attempts": 3,
             "technologies": ["python"], "priority": "high"},
            {"title": "Leased", "parent_id": root},
            {"title": "Ready", "parent_id": root, "required_capabilities": ["testing"],
             "complexity": "complex"},
            {"task_id": waiting, "title": "Waits", "parent_id": root, "depends_on": [failing]},
            {"title": "Other ready", "parent_id": root, "priority": "low"},
        ],
    )  # fmt: skip
    leased = tasks[2].id
    # Paused, so that the shared task service's scheduler leaves its tasks alone; both paths
    # below are asked as if it ran.
    await pool.execute(
        "INSERT INTO task.sessions (session_id, status, max_parallel_tasks, version)"
        " VALUES ($1, 'paused', 3, 1)",
        session,
    )
    _, token = await service.change(
        failing, None, lambda t, now, _: t.assign(now, "agent-1", 60), quiet=True
    )
    await service.change(failing, None, lambda t, now, _: t.start(now, token))
    await service.change(
        failing,
        None,
        lambda t, now, _: t.fail(now, token, "flaky", retryable=True, usage=Usage()),
    )
    await service.change(leased, None, lambda t, now, _: t.assign(now, "agent-1", 60), quiet=True)
    now = service.now()
    async with pool.acquire() as conn:
        stored = (await conn.fetch(_CACHED_SESSIONS, [session], list(RUNNABLE_SESSIONS)))[0]
        session_row: Any = {**dict(stored), "status": RUNNABLE_SESSIONS[0]}
        graph = service.graphs.peek(session, session_row["stamp"])
        assert graph is not None, "the writes above left the session's graph current"
        rows = await conn.fetch(_ELIGIBLE, ["paused"], now, 500, [])
        later = now + timedelta(hours=1)
        rows_later = await conn.fetch(_ELIGIBLE, ["paused"], later, 500, [])
    known: dict[tuple[str, ...], Any] = {}
    from_db = sorted(
        (e for e in (Eligible.of_row(r, known) for r in rows) if e.session_id == session),
        key=lambda e: (e.urgency, e.order),
    )
    from_memory = sorted(eligible_in(graph, session_row, now), key=lambda e: (e.urgency, e.order))
    assert [e.task_id for e in from_db] == [tasks[3].id, tasks[5].id]
    assert from_memory == from_db
    # Past the backoff the failed task is eligible again, on both paths.
    later_db = [Eligible.of_row(r, known) for r in rows_later]
    later_memory = eligible_in(graph, session_row, later)
    assert (
        {e.task_id for e in later_db if e.session_id == session}
        == {e.task_id for e in later_memory}
        == {tasks[1].id, tasks[3].id, tasks[5].id}
    )
