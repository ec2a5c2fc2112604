"""An agent that goes offline loses its leases at once, against real PostgreSQL and JetStream."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from orchestrator.api.task.v1 import task_pb2 as pb
from orchestrator.api.task.v1 import task_pb2_grpc
from orchestrator.common.events import new_envelope
from tests.support.mesh import wait_until

pytestmark = pytest.mark.timeout(60)


def _gone(agent_id: str, kind: str) -> bytes:
    event = new_envelope(
        event_type=f"agent.{kind}",
        source="tests",
        aggregate_type="agent",
        aggregate_id=agent_id,
        aggregate_version=7,
        session_id="",
        occurred_at=datetime.now(UTC),
        trace_context={},
    )
    return event.SerializeToString()


async def test_an_offline_agents_tasks_go_back_to_ready(task_service: str, nc: Any) -> None:
    gone, other = str(uuid.uuid4()), str(uuid.uuid4())
    session = str(uuid.uuid4())
    async with grpc.aio.insecure_channel(task_service) as channel:
        stub = task_pb2_grpc.TaskServiceStub(channel)
        plan = [pb.CreateTaskRequest(task_id=str(uuid.uuid4()), title=f"t{i}") for i in range(3)]
        tasks = (
            await stub.CreateTasks(pb.CreateTasksRequest(session_id=session, tasks=plan))
        ).tasks
        running, queued, elsewhere = (t.id for t in tasks)
        leases = {}
        for task_id, agent in ((running, gone), (queued, gone), (elsewhere, other)):
            reply = await stub.AssignTask(pb.AssignTaskRequest(task_id=task_id, agent_id=agent))
            leases[task_id] = reply.fencing_token
        await stub.StartTask(pb.StartTaskRequest(task_id=running, fencing_token=leases[running]))

        await nc.jetstream().publish(f"orch.agent.{gone}.offline", _gone(gone, "offline"))

        async def released() -> bool:
            for task_id in (running, queued):
                task = (await stub.GetTask(pb.GetTaskRequest(task_id=task_id))).task
                if task.status != pb.TASK_STATUS_READY:
                    return False
            return True

        await wait_until(released, within=20, what="the offline agent's tasks back to READY")
        again = (await stub.GetTask(pb.GetTaskRequest(task_id=running))).task
        assert again.assigned_agent_id == "" and "went offline" in again.status_reason
        assert again.attempt_count == 0  # a lost agent is not the task's failure
        # The other agent keeps its lease; the lost one's late report is refused.
        kept = (await stub.GetTask(pb.GetTaskRequest(task_id=elsewhere))).task
        assert kept.status == pb.TASK_STATUS_ASSIGNED and kept.assigned_agent_id == other
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CompleteTask(
                pb.CompleteTaskRequest(task_id=running, fencing_token=leases[running])
            )
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
