"""The task service over gRPC against real PostgreSQL and NATS JetStream."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from orchestrator.api.agent.v1 import agent_pb2, agent_pb2_grpc
from orchestrator.api.common.v1 import common_pb2, taxonomy_pb2
from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.session.v1 import session_pb2
from orchestrator.api.task.v1 import task_pb2 as pb
from orchestrator.api.task.v1 import task_pb2_grpc
from orchestrator.common.settings import Settings
from orchestrator.common.stack import pick_free_port
from orchestrator.task.choreography.sessions import record_session
from tests.support.mesh import running_service, wait_until

pytestmark = pytest.mark.timeout(90)

S = pb.TaskStatus
if TYPE_CHECKING:
    # Only the type stubs know the grpc.aio flavour of the generated stub.
    Stub = task_pb2_grpc.TaskServiceAsyncStub


def _own_instance(settings: Settings, **addresses: str) -> Settings:
    """Settings for an extra task service beside the shared one, on a port of its own."""
    return settings.model_copy(update={"task_addr": f"127.0.0.1:{pick_free_port()}", **addresses})


@pytest.fixture
async def stub(task_service: str) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(task_service) as channel:
        yield task_pb2_grpc.TaskServiceStub(channel)


def _session() -> str:
    return str(uuid.uuid4())


def _estimate(o: float, m: float, p: float) -> pb.PertEstimate:
    return pb.PertEstimate(optimistic_hours=o, most_likely_hours=m, pessimistic_hours=p)


async def _create(
    stub: Stub, session_id: str, title: str = "Write the parser", **fields: Any
) -> pb.Task:
    request = pb.CreateTaskRequest(session_id=session_id, title=title, actor="tests", **fields)
    return (await stub.CreateTask(request)).task


async def _get(stub: Stub, task_id: str) -> pb.Task:
    return (await stub.GetTask(pb.GetTaskRequest(task_id=task_id))).task


async def _start(stub: Stub, task_id: str, agent: str = "agent-1") -> int:
    """Assigns and starts the task; returns the run's fencing token."""
    assigned = await stub.AssignTask(pb.AssignTaskRequest(task_id=task_id, agent_id=agent))
    token = assigned.fencing_token
    await stub.StartTask(pb.StartTaskRequest(task_id=task_id, fencing_token=token))
    return int(token)


async def _finish(stub: Stub, task_id: str) -> pb.Task:
    token = await _start(stub, task_id)
    done = await stub.CompleteTask(pb.CompleteTaskRequest(task_id=task_id, fencing_token=token))
    return done.task


async def _list_all(stub: Stub, **filters: Any) -> list[pb.Task]:
    tasks: list[pb.Task] = []
    token = ""
    while True:
        page = await stub.ListTasks(
            pb.ListTasksRequest(
                page=common_pb2.PageRequest(page_size=7, page_token=token), **filters
            )
        )
        tasks += page.tasks
        token = page.page.next_page_token
        if not token:
            return tasks


async def _refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value


def _field(err: grpc.aio.AioRpcError) -> str | None:
    return dict(err.trailing_metadata() or ()).get("orch-error-field")


async def _events_of(
    settings: Settings, nc: Any, session_id: str
) -> list[tuple[str, events_pb2.Event]]:
    """(subject, event) of every event of one session's tasks, read with an ephemeral consumer."""
    sub = await nc.jetstream().pull_subscribe(
        f"orch.task.{session_id}.>",
        stream=settings.stream_name,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    events: list[tuple[str, events_pb2.Event]] = []
    try:
        while True:
            msgs = await sub.fetch(200, timeout=0.5)
            events += [(m.subject, events_pb2.Event.FromString(m.data)) for m in msgs]
    except Exception:  # the fetch times out once the stream has nothing more
        pass
    finally:
        await sub.unsubscribe()
    return events


async def _wait_events(
    settings: Settings, nc: Any, session_id: str, count: int
) -> list[tuple[str, events_pb2.Event]]:
    events: list[tuple[str, events_pb2.Event]] = []
    for _ in range(100):
        events = await _events_of(settings, nc, session_id)
        if len(events) >= count:
            return events
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} events for {session_id}, got {len(events)}")


async def test_create_get_and_list_with_filters_and_pages(stub: Stub) -> None:
    sid = _session()
    first = await _create(stub, sid, "First", priority=pb.TASK_PRIORITY_HIGH)
    assert first.status == S.TASK_STATUS_READY and first.version == 2
    assert first.estimate.expected_hours == pytest.approx((1 + 8 + 4) / 6)
    assert await _get(stub, first.id) == first
    waiting = await _create(stub, sid, "Second", depends_on=[first.id])
    assert waiting.status == S.TASK_STATUS_PENDING and waiting.version == 1
    child = await _create(stub, sid, "Child", parent_id=first.id)
    assert child.depth == 1 and child.status == S.TASK_STATUS_READY
    others = [await _create(stub, sid, f"Other {i}") for i in range(6)]
    listed = await _list_all(stub, session_id=sid)
    assert [t.id for t in listed] == [first.id, waiting.id, child.id, *(o.id for o in others)]
    page = await stub.ListTasks(
        pb.ListTasksRequest(session_id=sid, page=common_pb2.PageRequest(page_size=4))
    )
    assert page.page.total_size == 9 and len(page.tasks) == 4 and page.page.next_page_token
    by_parent = await _list_all(stub, parent_id=first.id)
    assert [t.id for t in by_parent] == [child.id]
    assert (await _get(stub, first.id)).child_ids == [child.id]
    roots = await _list_all(stub, session_id=sid, roots_only=True)
    assert child.id not in {t.id for t in roots} and len(roots) == 8
    pending = await _list_all(stub, session_id=sid, statuses=[S.TASK_STATUS_PENDING])
    assert [t.id for t in pending] == [waiting.id]


async def test_create_is_idempotent_by_id(stub: Stub) -> None:
    sid, ident = _session(), str(uuid.uuid4())
    created = await _create(stub, sid, "Once", task_id=ident)
    assert await _create(stub, sid, "Once", task_id=ident) == created
    err = await _refused(_create(stub, sid, "Other", task_id=ident))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_three_level_decomposition_is_persisted_and_read_back_identically(
    stub: Stub,
) -> None:
    sid = _session()
    root = await _create(
        stub,
        sid,
        "Billing service",
        description="A microservice with a REST API for invoices.",
        estimate=_estimate(40, 80, 160),
        technologies=["python", "postgres"],
    )
    reply = await stub.DecomposeTask(
        pb.DecomposeTaskRequest(task_id=root.id, expected_version=root.version, actor="planner")
    )
    subtasks = list(reply.subtasks)
    assert {t.depth for t in subtasks} == {1, 2, 3}
    assert reply.task.child_ids == [t.id for t in subtasks if t.parent_id == root.id]
    assert [t.title.split(":")[0] for t in subtasks[:5]] == [
        "API layer",
        "Service layer",
        "Data layer",
        "Shared components",
        "Tests",
    ]
    assert all(t.technologies == ["python", "postgres"] for t in subtasks)
    assert all(t.required_capabilities for t in subtasks)
    # Read back: each task, and the session's listing, exactly as Decompose returned them.
    assert await _get(stub, root.id) == reply.task
    for task in subtasks:
        assert await _get(stub, task.id) == task
    assert await _list_all(stub, session_id=sid) == [reply.task, *subtasks]
    level_one = await _list_all(stub, parent_id=root.id)
    assert level_one == [t for t in subtasks if t.parent_id == root.id]
    stored_edges = [d for t in subtasks for d in t.dependencies]
    assert list(reply.dependencies) == stored_edges and stored_edges
    # Only tasks with nothing to wait for are READY: the root is a parent, never run itself.
    ready = {t.title.split(":")[0] for t in subtasks if t.status == S.TASK_STATUS_READY}
    assert "Shared components" in ready and "Tests" not in ready
    # Readiness reaches down the levels: the first step under a ready parent is ready too.
    shared = next(t for t in subtasks if t.title.startswith("Shared components"))
    first_step = next(t for t in subtasks if t.parent_id == shared.id)
    assert first_step.title.startswith("Design") and first_step.status == S.TASK_STATUS_READY
    err = await _refused(stub.AssignTask(pb.AssignTaskRequest(task_id=root.id, agent_id="a")))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_decompose_refuses_bad_depth_and_second_split(stub: Stub) -> None:
    task = await _create(stub, _session(), "Tidy the repo")
    err = await _refused(stub.DecomposeTask(pb.DecomposeTaskRequest(task_id=task.id, max_depth=6)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and _field(err) == "max_depth"
    assert await _get(stub, task.id) == task
    await stub.DecomposeTask(pb.DecomposeTaskRequest(task_id=task.id, max_depth=1))
    err = await _refused(stub.DecomposeTask(pb.DecomposeTaskRequest(task_id=task.id)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_dependencies_add_remove_and_a_cycle_is_refused_naming_it(stub: Stub) -> None:
    sid = _session()
    a, b, c = [await _create(stub, sid, title) for title in ("Alpha", "Bravo", "Charlie")]
    added = await stub.AddDependency(
        pb.AddDependencyRequest(task_id=b.id, depends_on_task_id=a.id, actor="planner")
    )
    assert added.task.status == S.TASK_STATUS_PENDING  # was READY, gained an unmet dependency
    assert added.dependency.dependency_type == pb.DEPENDENCY_TYPE_FINISH_TO_START
    await stub.AddDependency(
        pb.AddDependencyRequest(
            task_id=c.id,
            depends_on_task_id=b.id,
            dependency_type=pb.DEPENDENCY_TYPE_START_TO_START,
            lag_hours=0.5,
        )
    )
    before = await _get(stub, a.id)
    err = await _refused(
        stub.AddDependency(pb.AddDependencyRequest(task_id=a.id, depends_on_task_id=c.id))
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = err.details() or ""
    assert "cycle" in details
    assert f"Alpha [{a.id}] → Bravo [{b.id}] → Charlie [{c.id}] → Alpha [{a.id}]" in details
    assert await _get(stub, a.id) == before
    removed = await stub.RemoveDependency(
        pb.RemoveDependencyRequest(task_id=b.id, depends_on_task_id=a.id)
    )
    assert removed.task.status == S.TASK_STATUS_READY and not removed.task.dependencies
    err = await _refused(
        stub.RemoveDependency(pb.RemoveDependencyRequest(task_id=b.id, depends_on_task_id=a.id))
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_input_names_the_problem_and_changes_nothing(stub: Stub) -> None:
    sid, other = _session(), _session()
    negative = await _refused(_create(stub, sid, "Bad", estimate=_estimate(-1, 2, 3)))
    assert negative.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _field(negative) == "estimate.optimistic_hours"
    assert "negative" in (negative.details() or "")
    mine = await _create(stub, sid, "Mine")
    theirs = await _create(stub, other, "Theirs")
    cross = await _refused(
        stub.AddDependency(pb.AddDependencyRequest(task_id=mine.id, depends_on_task_id=theirs.id))
    )
    assert cross.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"belongs to session {other}" in (cross.details() or "")
    cross_create = await _refused(_create(stub, sid, "Cross", depends_on=[theirs.id]))
    assert cross_create.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _field(cross_create) == "depends_on"
    itself = await _refused(
        stub.AddDependency(pb.AddDependencyRequest(task_id=mine.id, depends_on_task_id=mine.id))
    )
    assert itself.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cannot depend on itself" in (itself.details() or "")
    unknown = await _refused(
        stub.AddDependency(
            pb.AddDependencyRequest(task_id=mine.id, depends_on_task_id=str(uuid.uuid4()))
        )
    )
    assert unknown.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await _get(stub, mine.id) == mine and await _get(stub, theirs.id) == theirs
    assert [t.id for t in await _list_all(stub, session_id=sid)] == [mine.id]


@pytest.mark.parametrize(
    ("status", "deleted", "said"),
    [
        ("completed", False, "completed"),
        ("partially_completed", False, "partially_completed"),
        ("stopped", False, "stopped"),
        ("cancelled", False, "cancelled"),
        # A failed session could be retried, unless it was deleted.
        ("failed", True, "deleted"),
    ],
)
async def test_a_session_that_has_ended_takes_no_new_tasks(
    stub: Stub, pool: asyncpg.Pool, status: str, deleted: bool, said: str
) -> None:
    sid = _session()
    first = await _create(stub, sid, "Before the end")
    # As the session's events would have it: the task service records the status it consumed.
    await pool.execute(
        "INSERT INTO task.sessions (session_id, status, max_parallel_tasks, version, deleted)"
        " VALUES ($1, $2, 0, 7, $3)",
        sid,
        status,
        deleted,
    )
    late = await _refused(_create(stub, sid, "Too late"))
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"session {sid} is {said}" in (late.details() or "")
    planned = await _refused(
        stub.CreateTasks(
            pb.CreateTasksRequest(
                session_id=sid, tasks=[pb.CreateTaskRequest(title="Also too late")]
            )
        )
    )
    assert planned.code() == grpc.StatusCode.FAILED_PRECONDITION
    # Asking again for what exists is still answered; nothing was added.
    request = pb.CreateTaskRequest(
        session_id=sid, task_id=first.id, title="Before the end", actor="tests"
    )
    assert (await stub.CreateTask(request)).task == first
    assert [t.id for t in await _list_all(stub, session_id=sid)] == [first.id]


async def test_the_session_deleted_event_closes_the_session_to_new_tasks(
    stub: Stub, pool: asyncpg.Pool
) -> None:
    sid = _session()
    session = session_pb2.Session(id=sid, status=session_pb2.SESSION_STATUS_PENDING)
    async with pool.acquire() as conn:
        # What the consumer records of `session.created`, then of `session.deleted`.
        await record_session(conn, session, "pending", 1)
        assert (await _create(stub, sid, "While it lives")).session_id == sid
        session.deleted_at.GetCurrentTime()
        await record_session(conn, session, "pending", 2)
    late = await _refused(_create(stub, sid, "After the delete"))
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"session {sid} is deleted" in (late.details() or "")


async def test_a_failed_or_paused_session_still_takes_tasks(stub: Stub, pool: asyncpg.Pool) -> None:
    for status in ("failed", "paused", "timeout"):
        sid = _session()
        await pool.execute(
            "INSERT INTO task.sessions (session_id, status, max_parallel_tasks, version)"
            " VALUES ($1, $2, 0, 1)",
            sid,
            status,
        )
        # A failed session may be fixed and retried: its plan can still grow.
        assert (await _create(stub, sid, f"While {status}")).session_id == sid


async def test_ready_set_follows_completions(stub: Stub) -> None:
    sid = _session()
    a = await _create(stub, sid, "A")
    b = await _create(stub, sid, "B")
    c = await _create(stub, sid, "C", depends_on=[a.id, b.id])

    async def ready() -> list[str]:
        graph = await stub.GetGraph(pb.GetGraphRequest(session_id=sid))
        return sorted(graph.ready_task_ids)

    assert await ready() == sorted([a.id, b.id])
    await _finish(stub, a.id)
    assert (await _get(stub, c.id)).status == S.TASK_STATUS_PENDING
    assert await ready() == [b.id]
    await _finish(stub, b.id)
    assert (await _get(stub, c.id)).status == S.TASK_STATUS_READY
    assert await ready() == [c.id]


async def test_final_failure_skips_the_dependants_recursively(
    stub: Stub, settings: Settings, nc: Any
) -> None:
    sid = _session()
    a = await _create(stub, sid, "A", max_attempts=1)
    b = await _create(stub, sid, "B", depends_on=[a.id])
    c = await _create(stub, sid, "C", depends_on=[b.id])
    free = await _create(stub, sid, "Free")
    token = await _start(stub, a.id)
    failed = await stub.FailTask(
        pb.FailTaskRequest(task_id=a.id, fencing_token=token, error="disk full", retryable=True)
    )
    assert failed.task.status == S.TASK_STATUS_FAILED and not failed.will_retry
    assert (await _get(stub, b.id)).status == S.TASK_STATUS_SKIPPED
    skipped = await _get(stub, c.id)
    assert (
        skipped.status == S.TASK_STATUS_SKIPPED and f"[{b.id}] was skipped" in skipped.status_reason
    )
    assert (await _get(stub, free.id)).status == S.TASK_STATUS_READY
    events = await _wait_events(settings, nc, sid, 11)
    assert [(e.aggregate_id, e.type) for _, e in events if e.type == "task.skipped"] == [
        (b.id, "task.skipped"),
        (c.id, "task.skipped"),
    ]


async def test_retryable_failure_backs_off_then_runs_again(stub: Stub) -> None:
    task = await _create(stub, _session(), "Flaky")
    token = await _start(stub, task.id, "agent-1")
    failed = await stub.FailTask(
        pb.FailTaskRequest(task_id=task.id, fencing_token=token, error="timeout", retryable=True)
    )
    assert failed.will_retry and failed.task.status == S.TASK_STATUS_READY
    assert failed.task.attempt_count == 1 and list(failed.task.failed_agent_ids) == ["agent-1"]
    wait = failed.task.next_attempt_at.ToDatetime() - failed.task.updated_at.ToDatetime()
    assert wait == timedelta(seconds=10)
    err = await _refused(stub.AssignTask(pb.AssignTaskRequest(task_id=task.id, agent_id="a2")))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "waits until" in (
        err.details() or ""
    )


async def test_stale_fencing_token_and_stale_version(stub: Stub) -> None:
    task = await _create(stub, _session(), "Leased")
    first = await stub.AssignTask(pb.AssignTaskRequest(task_id=task.id, agent_id="agent-1"))
    assert first.fencing_token == 1
    await stub.ReleaseTask(pb.ReleaseTaskRequest(task_id=task.id, fencing_token=1))
    second = await stub.AssignTask(pb.AssignTaskRequest(task_id=task.id, agent_id="agent-2"))
    assert second.fencing_token == 2
    for call in (
        stub.StartTask(pb.StartTaskRequest(task_id=task.id, fencing_token=1)),
        stub.CompleteTask(pb.CompleteTaskRequest(task_id=task.id, fencing_token=1)),
        stub.RenewLease(pb.RenewLeaseRequest(task_id=task.id, fencing_token=1)),
    ):
        err = await _refused(call)
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "stale" in (err.details() or "")
    version = second.task.version
    err = await _refused(
        stub.StartTask(
            pb.StartTaskRequest(task_id=task.id, fencing_token=2, expected_version=version - 1)
        )
    )
    assert err.code() == grpc.StatusCode.ABORTED
    assert f"version {version}" in (err.details() or "")
    renewed = await stub.RenewLease(
        pb.RenewLeaseRequest(task_id=task.id, fencing_token=2, lease_seconds=900)
    )
    assert renewed.task.version == version
    assert renewed.lease_expires_at.ToDatetime() > second.lease_expires_at.ToDatetime()
    started = await stub.StartTask(
        pb.StartTaskRequest(task_id=task.id, fencing_token=2, expected_version=version)
    )
    assert started.task.status == S.TASK_STATUS_IN_PROGRESS


async def test_concurrent_assignments_have_one_winner(stub: Stub) -> None:
    task = await _create(stub, _session(), "Contended")

    async def assign(agent: str) -> grpc.StatusCode:
        try:
            await stub.AssignTask(pb.AssignTaskRequest(task_id=task.id, agent_id=agent))
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    codes = await asyncio.gather(*(assign(f"agent-{i}") for i in range(12)))
    assert codes.count(grpc.StatusCode.OK) == 1
    assert set(codes) - {grpc.StatusCode.OK} == {grpc.StatusCode.FAILED_PRECONDITION}
    assert (await _get(stub, task.id)).fencing_token == 1


async def test_concurrent_completions_make_the_dependant_ready_once(stub: Stub) -> None:
    sid = _session()
    a, b = await _create(stub, sid, "A"), await _create(stub, sid, "B")
    c = await _create(stub, sid, "C", depends_on=[a.id, b.id])
    tokens = [await _start(stub, a.id), await _start(stub, b.id)]
    await asyncio.gather(
        *(
            stub.CompleteTask(pb.CompleteTaskRequest(task_id=t, fencing_token=token))
            for t, token in zip((a.id, b.id), tokens, strict=True)
        )
    )
    ready = await _get(stub, c.id)
    assert ready.status == S.TASK_STATUS_READY and ready.version == c.version + 1


async def test_concurrent_edges_cannot_close_a_cycle_together(stub: Stub) -> None:
    sid = _session()
    a, b = await _create(stub, sid, "A"), await _create(stub, sid, "B")

    async def add(successor: str, predecessor: str) -> grpc.StatusCode:
        request = pb.AddDependencyRequest(task_id=successor, depends_on_task_id=predecessor)
        try:
            await stub.AddDependency(request)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    codes = await asyncio.gather(add(b.id, a.id), add(a.id, b.id))
    assert sorted(c.name for c in codes) == ["INVALID_ARGUMENT", "OK"]


async def test_graph_critical_path_on_a_hand_computed_graph(stub: Stub) -> None:
    # a (2 h) → b (4 h) → d (1 h), a → c (3 h) → d: critical a, b, d = 7 h; c has 1 h of slack.
    sid = _session()
    a = await _create(stub, sid, "a", estimate=_estimate(1, 2, 3))
    b = await _create(stub, sid, "b", estimate=_estimate(2, 3, 10), depends_on=[a.id])
    c = await _create(stub, sid, "c", estimate=_estimate(2, 3, 4), depends_on=[a.id])
    d = await _create(stub, sid, "d", estimate=_estimate(1, 1, 1), depends_on=[b.id, c.id])
    graph = await stub.GetGraph(pb.GetGraphRequest(session_id=sid))
    assert list(graph.critical_path.task_ids) == [a.id, b.id, d.id]
    assert graph.critical_path.expected_hours == pytest.approx(7.0)
    assert graph.critical_path.sigma_hours == pytest.approx(math.sqrt(17) / 3)
    finish = graph.expected_finish_at.ToDatetime() - graph.computed_at.ToDatetime()
    assert finish == timedelta(hours=7)
    nodes = {n.task_id: n for n in graph.nodes}
    assert nodes[c.id].slack_hours == pytest.approx(1.0) and not nodes[c.id].on_critical_path
    assert nodes[d.id].earliest_start_hours == pytest.approx(6.0)
    assert list(graph.topological_order) == [a.id, b.id, c.id, d.id]
    assert list(graph.ready_task_ids) == [a.id] and len(graph.edges) == 4
    # Completed work counts as 0: after a and b, what is left is c then d.
    await _finish(stub, a.id)
    await _finish(stub, b.id)
    later = await stub.GetGraph(pb.GetGraphRequest(session_id=sid))
    assert list(later.critical_path.task_ids) == [c.id, d.id]
    assert later.critical_path.expected_hours == pytest.approx(4.0)


async def test_events_are_published_under_the_session_subject(
    stub: Stub, settings: Settings, nc: Any
) -> None:
    sid = _session()
    task = await _create(stub, sid, "Published")
    await _finish(stub, task.id)
    events = await _wait_events(settings, nc, sid, 5)
    # An assignment also names its agent, so each worker receives its own only.
    agent = events[2][1].task.task.assigned_agent_id
    assert agent
    assert [(subject, e.type, e.aggregate_version) for subject, e in events] == [
        (f"orch.task.{sid}.{task.id}.{name}", f"task.{name.split('.')[0]}", version)
        for version, name in enumerate(
            ["created", "ready", f"assigned.{agent}", "started", "completed"], 1
        )
    ]
    last = events[-1][1]
    assert last.session_id == sid and last.source == "task"
    assert last.task.previous_status == S.TASK_STATUS_IN_PROGRESS
    assert last.task.task.status == S.TASK_STATUS_COMPLETED


async def test_an_expired_lease_goes_back_to_ready(stub: Stub) -> None:
    task = await _create(stub, _session(), "Abandoned")
    await stub.AssignTask(pb.AssignTaskRequest(task_id=task.id, agent_id="gone", lease_seconds=1))

    async def requeued() -> bool:
        return (await _get(stub, task.id)).status == S.TASK_STATUS_READY

    # Within the reaper's grace after the service started (REAP_GRACE_SECONDS), then a sweep.
    await wait_until(requeued, within=25, what="the lease reaper")
    again = await _get(stub, task.id)
    assert again.assigned_agent_id == "" and again.attempt_count == 0
    assert again.status_reason == "the lease ran out"


async def test_approval_reject_then_approve(stub: Stub) -> None:
    task = await _create(stub, _session(), "Reviewed", requires_approval=True, description="Do it.")
    done = await _finish(stub, task.id)
    assert done.status == S.TASK_STATUS_BLOCKED and done.awaiting_approval
    err = await _refused(stub.ResumeTask(pb.ResumeTaskRequest(task_id=task.id)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    rejected = await stub.RejectTask(
        pb.RejectTaskRequest(task_id=task.id, actor="ana", comment="Handle empty input.")
    )
    assert rejected.task.status == S.TASK_STATUS_READY
    assert rejected.task.description.endswith("Reviewer feedback (ana): Handle empty input.")
    await _finish(stub, task.id)
    approved = await stub.ApproveTask(pb.ApproveTaskRequest(task_id=task.id, actor="ana"))
    assert approved.task.status == S.TASK_STATUS_COMPLETED
    assert [r.approved for r in approved.task.reviews] == [False, True]


async def test_finish_to_finish_holds_until_the_predecessor_finishes(stub: Stub) -> None:
    sid = _session()
    a = await _create(stub, sid, "Docs")
    b = await _create(stub, sid, "Release notes")
    await stub.AddDependency(
        pb.AddDependencyRequest(
            task_id=b.id,
            depends_on_task_id=a.id,
            dependency_type=pb.DEPENDENCY_TYPE_FINISH_TO_FINISH,
        )
    )
    token_a = await _start(stub, a.id)
    held = await _finish(stub, b.id)
    assert held.status == S.TASK_STATUS_BLOCKED and f"[{a.id}] to finish" in held.status_reason
    await stub.CompleteTask(pb.CompleteTaskRequest(task_id=a.id, fencing_token=token_a))
    assert (await _get(stub, b.id)).status == S.TASK_STATUS_COMPLETED


async def test_a_parent_rolls_up_and_cancel_reaches_descendants(stub: Stub) -> None:
    sid = _session()
    parent = await _create(stub, sid, "Chores", description="- tidy the docs\n- bump the pins")
    split = await stub.DecomposeTask(pb.DecomposeTaskRequest(task_id=parent.id, max_depth=1))
    first, second = split.subtasks
    await _start(stub, first.id)
    assert (await _get(stub, parent.id)).status == S.TASK_STATUS_IN_PROGRESS
    await stub.CompleteTask(pb.CompleteTaskRequest(task_id=first.id, fencing_token=1))
    await _finish(stub, second.id)
    assert (await _get(stub, parent.id)).status == S.TASK_STATUS_COMPLETED

    other = await _create(stub, sid, "More chores", description="- one thing\n- another thing")
    split = await stub.DecomposeTask(pb.DecomposeTaskRequest(task_id=other.id, max_depth=1))
    running = split.subtasks[0]
    await _start(stub, running.id)
    cancelled = await stub.CancelTask(pb.CancelTaskRequest(task_id=other.id, reason="not needed"))
    assert cancelled.task.status == S.TASK_STATUS_CANCELLED
    for sub in split.subtasks:
        assert (await _get(stub, sub.id)).status == S.TASK_STATUS_CANCELLED


async def test_block_pause_resume_and_skip(stub: Stub) -> None:
    sid = _session()
    task = await _create(stub, sid, "Steered")
    after = await _create(stub, sid, "After", depends_on=[task.id])
    await _start(stub, task.id)
    paused = await stub.PauseTask(pb.PauseTaskRequest(task_id=task.id, reason="lunch"))
    assert paused.task.status == S.TASK_STATUS_PAUSED and paused.task.assigned_agent_id == ""
    resumed = await stub.ResumeTask(pb.ResumeTaskRequest(task_id=task.id))
    assert resumed.task.status == S.TASK_STATUS_READY
    blocked = await stub.BlockTask(pb.BlockTaskRequest(task_id=task.id, reason="needs a key"))
    assert blocked.task.status == S.TASK_STATUS_BLOCKED and not blocked.task.awaiting_approval
    skipped = await stub.SkipTask(pb.SkipTaskRequest(task_id=task.id, reason="done elsewhere"))
    assert skipped.task.status == S.TASK_STATUS_SKIPPED
    assert (await _get(stub, after.id)).status == S.TASK_STATUS_SKIPPED


async def _next(call: Any) -> pb.WatchTasksResponse:
    message = await asyncio.wait_for(call.read(), 10)
    assert isinstance(message, pb.WatchTasksResponse), message
    return message


async def test_watch_streams_the_snapshot_then_every_change(stub: Stub) -> None:
    sid = _session()
    task = await _create(stub, sid, "Watched")
    call = stub.WatchTasks(pb.WatchTasksRequest(session_id=sid))
    try:
        first = await _next(call)
        assert first.task == task and first.event_type == ""
        await stub.AssignTask(pb.AssignTaskRequest(task_id=task.id, agent_id="agent-1"))
        second = await _next(call)
        assert second.event_type == "task.assigned"
        assert second.task.status == S.TASK_STATUS_ASSIGNED
        newcomer = await _create(stub, sid, "Newcomer")
        seen = [await _next(call) for _ in range(2)]
        assert [(m.task.id, m.event_type) for m in seen] == [
            (newcomer.id, "task.created"),
            (newcomer.id, "task.ready"),
        ]
    finally:
        call.cancel()


class _FakeAgents(agent_pb2_grpc.AgentServiceServicer):
    """RouteTask as the agent service answers it, scripted per test; the other RPCs are
    the generated UNIMPLEMENTED ones."""

    def __init__(self) -> None:
        self.requests: list[agent_pb2.RouteTaskRequest] = []
        self.refusal = ""
        self.agent_id = "agent-routed"

    async def RouteTask(self, request: agent_pb2.RouteTaskRequest, context: Any) -> Any:
        self.requests.append(request)
        if self.refusal:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, self.refusal)
        candidate = agent_pb2.RouteCandidate(
            agent_id=self.agent_id,
            agent_name="AGENT-ROUTED",
            # Room for every leftover READY task of other tests this instance may place here.
            max_concurrent_tasks=1_000_000,
            score=agent_pb2.RouteScore(weighted_sum=0.9, tier_multiplier=1.0, total=0.9),
        )
        return agent_pb2.RouteTaskResponse(
            agent=agent_pb2.Agent(id=self.agent_id), candidates=[candidate]
        )


@pytest.fixture(scope="module")
async def routed(settings: Settings) -> AsyncIterator[tuple[str, _FakeAgents]]:
    """A task service whose agent service is the scripted fake above."""
    from orchestrator.task.main import serve

    agents = _FakeAgents()  # type: ignore[abstract]
    server = grpc.aio.server()
    agent_pb2_grpc.add_AgentServiceServicer_to_server(agents, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    mine = _own_instance(settings, agent_addr=f"127.0.0.1:{port}")
    try:
        async with running_service(serve, mine.task_addr, "task", mine) as address:
            yield address, agents
    finally:
        await server.stop(0)


async def test_assign_without_an_agent_routes_through_the_agent_service(
    routed: tuple[str, _FakeAgents],
) -> None:
    address, agents = routed
    async with grpc.aio.insecure_channel(address) as channel:
        stub: Stub = task_pb2_grpc.TaskServiceStub(channel)
        task = await _create(
            stub,
            _session(),
            "Audit",
            required_capabilities=[taxonomy_pb2.CAPABILITY_SECURITY_AUDIT],
        )
        agents.refusal = "no agent holds SECURITY_AUDIT"
        err = await _refused(stub.AssignTask(pb.AssignTaskRequest(task_id=task.id)))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "no agent holds SECURITY_AUDIT" in (err.details() or "")
        waiting = await _get(stub, task.id)
        assert waiting.status == S.TASK_STATUS_READY
        assert waiting.status_reason == "no agent holds SECURITY_AUDIT"
        agents.refusal = ""
        assigned = await stub.AssignTask(pb.AssignTaskRequest(task_id=task.id))
        assert assigned.task.assigned_agent_id == "agent-routed" and assigned.fencing_token == 1
        # Rankings are asked per kind of work, with every eligible agent (this service counts
        # their load): an explicit assignment asks afresh rather than reading the cache.
        # The instance's scheduler may rank other sessions' ready work meanwhile.
        audit = [taxonomy_pb2.CAPABILITY_SECURITY_AUDIT]
        sent = next(r for r in reversed(agents.requests) if list(r.required_capabilities) == audit)
        assert sent.ignore_load and not sent.reserve and sent.max_candidates == 0


async def test_an_unreachable_agent_service_is_unavailable(settings: Settings) -> None:
    from orchestrator.task.main import serve

    mine = _own_instance(settings, agent_addr=f"127.0.0.1:{pick_free_port()}")
    async with (
        running_service(serve, mine.task_addr, "task", mine) as address,
        grpc.aio.insecure_channel(address) as channel,
    ):
        stub: Stub = task_pb2_grpc.TaskServiceStub(channel)
        task = await _create(stub, _session(), "Stranded")
        err = await _refused(stub.AssignTask(pb.AssignTaskRequest(task_id=task.id)))
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        assert (await _get(stub, task.id)) == task


# The tests above use conftest's `task_service`, which routes through the real agent service;
# the two before this one run extra task services against a scripted or a missing one.
async def test_routing_through_the_real_agent_service(
    agent_service: str, task_service: str
) -> None:
    async with (
        grpc.aio.insecure_channel(agent_service) as agent_channel,
        grpc.aio.insecure_channel(task_service) as task_channel,
    ):
        agents: agent_pb2_grpc.AgentServiceAsyncStub = agent_pb2_grpc.AgentServiceStub(
            agent_channel
        )
        stub: Stub = task_pb2_grpc.TaskServiceStub(task_channel)
        # Capabilities no other test's agent holds together, so the route is this agent's.
        mine = [
            taxonomy_pb2.CAPABILITY_DOCUMENTATION,
            taxonomy_pb2.CAPABILITY_REFACTORING,
            taxonomy_pb2.CAPABILITY_OPTIMIZATION,
        ]
        registered = await agents.RegisterAgent(
            agent_pb2.RegisterAgentRequest(
                name=f"AGENT-T{uuid.uuid4().hex[:8].upper()}",
                agent_type=agent_pb2.AGENT_TYPE_IMPLEMENTER,
                primary_capabilities=mine,
                max_concurrent_tasks=2,
            )
        )
        agent = registered.agent
        await agents.Heartbeat(agent_pb2.HeartbeatRequest(agent_id=agent.id))
        task = await _create(stub, _session(), "Routed for real", required_capabilities=mine)
        assigned = await stub.AssignTask(pb.AssignTaskRequest(task_id=task.id))
        assert assigned.task.assigned_agent_id == agent.id
        unheld = [taxonomy_pb2.CAPABILITY_TASK_DECOMPOSITION, taxonomy_pb2.CAPABILITY_CODE_REVIEW]
        nobody = await _create(stub, _session(), "Nobody can", required_capabilities=unheld)
        err = await _refused(stub.AssignTask(pb.AssignTaskRequest(task_id=nobody.id)))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert (await _get(stub, nobody.id)).status_reason
