"""CreateTasks: a session's plan in one transaction, against real PostgreSQL and JetStream."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest

from orchestrator.api.task.v1 import task_pb2 as pb
from orchestrator.api.task.v1 import task_pb2_grpc

pytestmark = pytest.mark.timeout(90)

S = pb.TaskStatus
if TYPE_CHECKING:
    Stub = task_pb2_grpc.TaskServiceAsyncStub


@pytest.fixture
async def stub(task_service: str) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(task_service) as channel:
        yield task_pb2_grpc.TaskServiceStub(channel)


def _ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def _chain_plan(session: str, root: str, ids: list[str]) -> pb.CreateTasksRequest:
    tasks = [pb.CreateTaskRequest(task_id=root, title="Release 2.0", actor="tests")]
    for step, task_id in enumerate(ids):
        tasks.append(
            pb.CreateTaskRequest(
                task_id=task_id,
                parent_id=root,
                title=f"step {step}",
                depends_on=[ids[step - 1]] if step else [],
                actor="tests",
            )
        )
    return pb.CreateTasksRequest(session_id=session, tasks=tasks)


async def test_a_plan_is_stored_in_order_with_its_graph(stub: Stub) -> None:
    session, root, steps = str(uuid.uuid4()), str(uuid.uuid4()), _ids(4)
    reply = await stub.CreateTasks(_chain_plan(session, root, steps))
    assert [t.id for t in reply.tasks] == [root, *steps]
    by_id = {t.id: t for t in reply.tasks}
    assert by_id[root].child_ids == steps
    assert [by_id[s].depth for s in steps] == [1, 1, 1, 1]
    # The first step may start at once; each other one waits for the step before it.
    assert by_id[steps[0]].status == S.TASK_STATUS_READY
    assert all(by_id[s].status == S.TASK_STATUS_PENDING for s in steps[1:])
    graph = await stub.GetGraph(pb.GetGraphRequest(session_id=session))
    order = [i for i in graph.topological_order if i in steps]
    assert order == steps


async def test_repeating_a_plan_returns_what_is_stored(stub: Stub) -> None:
    session, root, steps = str(uuid.uuid4()), str(uuid.uuid4()), _ids(3)
    first = await stub.CreateTasks(_chain_plan(session, root, steps))
    again = await stub.CreateTasks(_chain_plan(session, root, steps))
    assert [t.version for t in again.tasks] == [t.version for t in first.tasks]
    listed = await stub.ListTasks(pb.ListTasksRequest(session_id=session))
    assert len(listed.tasks) == 4


async def test_a_bad_task_refuses_the_whole_plan(stub: Stub) -> None:
    session, root, steps = str(uuid.uuid4()), str(uuid.uuid4()), _ids(3)
    plan = _chain_plan(session, root, steps)
    plan.tasks[2].title = ""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CreateTasks(plan)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "tasks[2]" in (refused.value.details() or "")
    listed = await stub.ListTasks(pb.ListTasksRequest(session_id=session))
    assert list(listed.tasks) == []


async def test_a_plan_that_closes_a_cycle_is_refused(stub: Stub) -> None:
    session, (a, b) = str(uuid.uuid4()), _ids(2)
    plan = pb.CreateTasksRequest(
        session_id=session,
        tasks=[
            pb.CreateTaskRequest(task_id=a, title="a", actor="tests"),
            pb.CreateTaskRequest(task_id=b, title="b", depends_on=[a], actor="tests"),
        ],
    )
    await stub.CreateTasks(plan)
    # b's plan again would be the same; a new task c between them cannot close a loop through
    # an existing one, but a parent waiting on its own subtask's dependant can.
    root, child, after = _ids(3)
    looped = pb.CreateTasksRequest(
        session_id=session,
        tasks=[
            pb.CreateTaskRequest(task_id=root, title="parent", actor="tests"),
            pb.CreateTaskRequest(task_id=after, title="after", depends_on=[root], actor="tests"),
            pb.CreateTaskRequest(
                task_id=child, title="child", parent_id=root, depends_on=[after], actor="tests"
            ),
        ],
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CreateTasks(looped)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    listed = await stub.ListTasks(pb.ListTasksRequest(session_id=session))
    assert {t.id for t in listed.tasks} == {a, b}


async def test_plans_name_tasks_of_one_session_only(stub: Stub) -> None:
    other = await stub.CreateTask(
        pb.CreateTaskRequest(session_id=str(uuid.uuid4()), title="elsewhere", actor="tests")
    )
    session = str(uuid.uuid4())
    for task in (
        pb.CreateTaskRequest(title="x", depends_on=[other.task.id], actor="tests"),
        pb.CreateTaskRequest(title="x", session_id=str(uuid.uuid4()), actor="tests"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CreateTasks(pb.CreateTasksRequest(session_id=session, tasks=[task]))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as empty:
        await stub.CreateTasks(pb.CreateTasksRequest(session_id=session))
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
