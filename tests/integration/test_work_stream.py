"""A worker's calls over the TaskService.Work stream, against the real task service."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from orchestrator.api.task.v1 import task_pb2 as pb
from orchestrator.api.task.v1 import task_pb2_grpc
from orchestrator.common.settings import Settings
from orchestrator.common.stack import pick_free_port
from orchestrator.worker.work_stream import WorkStream
from tests.support.mesh import running_service, wait_until

pytestmark = pytest.mark.timeout(90)

S = pb.TaskStatus


@pytest.fixture
async def channel(task_service: str) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(task_service) as channel:
        yield channel


async def _assigned(stub: task_pb2_grpc.TaskServiceAsyncStub, n: int) -> list[pb.Task]:
    """`n` tasks of a new session, each assigned to an agent of this test."""
    session = str(uuid.uuid4())
    tasks = []
    for i in range(n):
        created = await stub.CreateTask(
            pb.CreateTaskRequest(session_id=session, title=f"Step {i}", actor="tests")
        )
        assigned = await stub.AssignTask(
            pb.AssignTaskRequest(task_id=created.task.id, agent_id="agent-stream")
        )
        tasks.append(assigned.task)
    return tasks


async def _refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value


async def test_many_calls_in_flight_are_each_answered_by_their_own(
    channel: grpc.aio.Channel,
) -> None:
    stub = task_pb2_grpc.TaskServiceStub(channel)
    work = WorkStream(stub, timeout_seconds=10)
    try:
        tasks = await _assigned(stub, 12)
        started = await asyncio.gather(
            *(
                work.StartTask(
                    pb.StartTaskRequest(task_id=t.id, fencing_token=t.fencing_token, actor="w")
                )
                for t in tasks
            )
        )
        assert [s.task.id for s in started] == [t.id for t in tasks]
        assert {s.task.status for s in started} == {S.TASK_STATUS_IN_PROGRESS}
        renewed = await work.RenewLease(
            pb.RenewLeaseRequest(task_id=tasks[0].id, fencing_token=tasks[0].fencing_token)
        )
        assert renewed.lease_expires_at.seconds > 0
        released = await work.ReleaseTask(
            pb.ReleaseTaskRequest(
                task_id=tasks[1].id, fencing_token=tasks[1].fencing_token, reason="handed back"
            )
        )
        assert released.task.status == S.TASK_STATUS_READY
        failed = await work.FailTask(
            pb.FailTaskRequest(
                task_id=tasks[2].id,
                fencing_token=tasks[2].fencing_token,
                error="boom",
                retryable=False,
            )
        )
        assert failed.task.status == S.TASK_STATUS_FAILED and not failed.will_retry
        rest = [t for t in tasks if t.id not in (tasks[1].id, tasks[2].id)]
        completed = await asyncio.gather(
            *(
                work.CompleteTask(
                    pb.CompleteTaskRequest(task_id=t.id, fencing_token=t.fencing_token)
                )
                for t in rest
            )
        )
        assert [c.task.id for c in completed] == [t.id for t in rest]
        assert {c.task.status for c in completed} == {S.TASK_STATUS_COMPLETED}
        for t in tasks:
            stored = (await stub.GetTask(pb.GetTaskRequest(task_id=t.id))).task
            expected = {tasks[1].id: S.TASK_STATUS_READY, tasks[2].id: S.TASK_STATUS_FAILED}
            assert stored.status == expected.get(t.id, S.TASK_STATUS_COMPLETED)
    finally:
        await work.close()


async def test_a_refused_call_fails_alone_with_the_unary_status(
    channel: grpc.aio.Channel,
) -> None:
    stub = task_pb2_grpc.TaskServiceStub(channel)
    work = WorkStream(stub, timeout_seconds=10)
    try:
        (task,) = await _assigned(stub, 1)
        stale = pb.StartTaskRequest(task_id=task.id, fencing_token=task.fencing_token + 7)
        err = await _refused(work.StartTask(stale))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "fencing" in (err.details() or "")
        err = await _refused(work.StartTask(pb.StartTaskRequest(task_id="not-a-uuid")))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        missing = pb.StartTaskRequest(task_id=str(uuid.uuid4()), fencing_token=1)
        err = await _refused(work.StartTask(missing))
        assert err.code() == grpc.StatusCode.NOT_FOUND
        # The stream lives on: the right token still starts the task.
        good = pb.StartTaskRequest(task_id=task.id, fencing_token=task.fencing_token)
        assert (await work.StartTask(good)).task.status == S.TASK_STATUS_IN_PROGRESS
        # Done twice, the second completion is refused and the task completed once.
        done = pb.CompleteTaskRequest(task_id=task.id, fencing_token=task.fencing_token)
        await work.CompleteTask(done)
        err = await _refused(work.CompleteTask(done))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        await work.close()


async def test_a_broken_stream_fails_with_unavailable_and_the_next_call_reopens_it(
    settings: Settings,
) -> None:
    from orchestrator.task.main import serve

    mine = settings.model_copy(
        update={"task_addr": f"127.0.0.1:{pick_free_port()}", "shutdown_grace_seconds": 0.5}
    )
    async with grpc.aio.insecure_channel(mine.task_addr) as channel:
        stub = task_pb2_grpc.TaskServiceStub(channel)
        work = WorkStream(stub, timeout_seconds=10)
        try:
            async with running_service(serve, mine.task_addr, "task", mine):
                first, second = await _assigned(stub, 2)
                start = pb.StartTaskRequest(task_id=first.id, fencing_token=first.fencing_token)
                assert (await work.StartTask(start)).task.status == S.TASK_STATUS_IN_PROGRESS
            # The service is gone: the call cannot be answered.
            late = pb.StartTaskRequest(task_id=second.id, fencing_token=second.fencing_token)
            err = await _refused(work.StartTask(late))
            assert err.code() == grpc.StatusCode.UNAVAILABLE
            async with running_service(serve, mine.task_addr, "task", mine):
                # Back on the same address: the next call opens a new stream and goes through
                # once the channel has reconnected (a worker's retries wait the same way).
                async def reopened() -> bool:
                    try:
                        reply = await work.StartTask(late)
                    except grpc.aio.AioRpcError as exc:
                        assert exc.code() == grpc.StatusCode.UNAVAILABLE
                        return False
                    return reply.task.status == S.TASK_STATUS_IN_PROGRESS

                await wait_until(reopened, within=20, what="a call on a new work stream")
        finally:
            await work.close()


async def test_a_request_naming_no_call_is_answered_invalid_argument(
    channel: grpc.aio.Channel,
) -> None:
    stub = task_pb2_grpc.TaskServiceStub(channel)
    call = stub.Work()
    await call.write(pb.WorkRequest(id=41))
    reply = await call.read()
    assert isinstance(reply, pb.WorkResponse)
    assert reply.id == 41 and reply.WhichOneof("outcome") == "error"
    assert reply.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert reply.error.field == "call"
    await call.done_writing()
    assert await call.read() == grpc.aio.EOF
