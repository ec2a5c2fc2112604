"""The agent worker in-process against the real agent and task services and JetStream."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import struct_pb2

from orchestrator.api.agent.v1 import agent_pb2, agent_pb2_grpc
from orchestrator.api.common.v1 import taxonomy_pb2
from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.task.v1 import task_pb2 as pb
from orchestrator.api.task.v1 import task_pb2_grpc
from orchestrator.common.settings import Settings
from orchestrator.worker import Worker, WorkerConfig
from orchestrator.worker.executors import ShellExecutor
from tests.support.mesh import wait_until, worker_running

pytestmark = pytest.mark.timeout(20)

S = pb.TaskStatus
if TYPE_CHECKING:
    TaskStub = task_pb2_grpc.TaskServiceAsyncStub
    AgentStub = agent_pb2_grpc.AgentServiceAsyncStub


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, workspace: Path, **options: Any
) -> AsyncIterator[Worker]:
    name = f"AGENT-T-{uuid.uuid4().hex[:10].upper()}"
    config = WorkerConfig(name=name, workspace=workspace, grace_seconds=options.pop("grace", 5.0))
    async with worker_running(Worker(settings, config, ShellExecutor(**options))) as worker:
        yield worker


async def _create_and_assign(tasks: TaskStub, agent_id: str, command: str) -> pb.Task:
    command_input = struct_pb2.Struct()
    command_input.update({"command": command})
    created = await tasks.CreateTask(
        pb.CreateTaskRequest(
            session_id=str(uuid.uuid4()),
            title="Shell task",
            required_capabilities=[taxonomy_pb2.CAPABILITY_CODE_GENERATION],
            input=command_input,
            max_attempts=1,
            actor="tests",
        )
    )
    task_id = created.task.id
    await wait_until(lambda: _status_is(tasks, task_id, S.TASK_STATUS_READY), what="READY")
    try:
        request = pb.AssignTaskRequest(task_id=task_id, agent_id=agent_id)
        return (await tasks.AssignTask(request)).task
    except grpc.aio.AioRpcError:
        # A scheduler running beside us may have routed it first: fine when it chose us.
        task = await _get(tasks, task_id)
        assert task.assigned_agent_id == agent_id, task.status_reason
        return task


async def _get(tasks: TaskStub, task_id: str) -> pb.Task:
    return (await tasks.GetTask(pb.GetTaskRequest(task_id=task_id))).task


async def _status_is(tasks: TaskStub, task_id: str, status: int) -> bool:
    return (await _get(tasks, task_id)).status == status


async def test_registers_and_heartbeats_as_an_idle_shell_agent(
    settings: Settings, agents: AgentStub, task_service: str, tmp_path: Path
) -> None:
    async with running_worker(settings, tmp_path) as worker:

        async def idle() -> bool:
            reply = await agents.GetAgent(agent_pb2.GetAgentRequest(agent_id=worker.agent_id))
            return reply.agent.status == agent_pb2.AGENT_STATUS_IDLE

        await wait_until(idle, within=10, what="the agent IDLE")
        agent = (await agents.GetAgent(agent_pb2.GetAgentRequest(agent_id=worker.agent_id))).agent
        assert agent.name == worker.config.name
        assert agent.executor_kind == agent_pb2.EXECUTOR_KIND_SHELL
    agent = (await agents.GetAgent(agent_pb2.GetAgentRequest(agent_id=worker.agent_id))).agent
    assert agent.status == agent_pb2.AGENT_STATUS_DRAINING


async def test_runs_an_assigned_task_to_completion(
    settings: Settings, tasks: TaskStub, tmp_path: Path
) -> None:
    async with running_worker(settings, tmp_path) as worker:
        task = await _create_and_assign(tasks, worker.agent_id, "echo done > out.txt")
        await wait_until(
            lambda: _status_is(tasks, task.id, S.TASK_STATUS_COMPLETED), within=10, what="done"
        )
    done = await _get(tasks, task.id)
    assert done.result.fields["exit_code"].number_value == 0
    assert (tmp_path / "out.txt").read_text() == "done\n"


async def test_a_failing_command_fails_the_task(
    settings: Settings, tasks: TaskStub, tmp_path: Path
) -> None:
    async with running_worker(settings, tmp_path) as worker:
        task = await _create_and_assign(tasks, worker.agent_id, "echo nope >&2; exit 7")
        await wait_until(
            lambda: _status_is(tasks, task.id, S.TASK_STATUS_FAILED), within=10, what="FAILED"
        )
    failed = await _get(tasks, task.id)
    assert failed.error == "exit code 7: nope"


async def test_a_redelivered_assignment_does_not_run_twice(
    settings: Settings, tasks: TaskStub, nc: Any, tmp_path: Path
) -> None:
    async with running_worker(settings, tmp_path) as worker:
        task = await _create_and_assign(tasks, worker.agent_id, "echo run >> runs.txt; sleep 1")
        await wait_until(lambda: _status_is(tasks, task.id, S.TASK_STATUS_IN_PROGRESS))
        # The same assignment again, while it runs and after it finished.
        replay = events_pb2.Event(
            event_id=str(uuid.uuid4()), type="task.assigned", task=events_pb2.TaskEvent(task=task)
        )
        subject = f"orch.task.{task.session_id}.{task.id}.assigned.{worker.agent_id}"
        await nc.jetstream().publish(subject, replay.SerializeToString())
        await wait_until(lambda: _status_is(tasks, task.id, S.TASK_STATUS_COMPLETED), within=10)
        replay.event_id = str(uuid.uuid4())
        await nc.jetstream().publish(subject, replay.SerializeToString())
        await asyncio.sleep(1.5)
        assert not worker.runs
    assert (tmp_path / "runs.txt").read_text() == "run\n"


async def test_stop_releases_a_long_running_task(
    settings: Settings, tasks: TaskStub, tmp_path: Path
) -> None:
    async with running_worker(settings, tmp_path, grace=0.5) as worker:
        task = await _create_and_assign(tasks, worker.agent_id, "sleep 30")
        await wait_until(lambda: _status_is(tasks, task.id, S.TASK_STATUS_IN_PROGRESS))
        await asyncio.wait_for(worker.stop(), 10)
    released = await _get(tasks, task.id)
    assert released.status == S.TASK_STATUS_READY
    assert released.attempt_count == 0


async def test_cancelling_a_task_kills_its_run(
    settings: Settings, tasks: TaskStub, tmp_path: Path
) -> None:
    async with running_worker(settings, tmp_path) as worker:
        task = await _create_and_assign(tasks, worker.agent_id, "sleep 30; touch late.txt")
        await wait_until(lambda: _status_is(tasks, task.id, S.TASK_STATUS_IN_PROGRESS))
        await tasks.CancelTask(pb.CancelTaskRequest(task_id=task.id, reason="not needed"))

        async def gone() -> bool:
            return task.id not in worker.runs

        await wait_until(gone, within=10, what="the run killed")
    assert (await _get(tasks, task.id)).status == S.TASK_STATUS_CANCELLED
    assert not (tmp_path / "late.txt").exists()
