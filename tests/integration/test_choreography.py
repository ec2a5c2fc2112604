"""The first thin path of the choreography, driven by hand over gRPC with no worker: a started
session gets its root task, decomposed; the scheduler assigns the READY leaves; the test plays
the worker; the session service ends the session from the root task's end."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from orchestrator.api.agent.v1 import agent_pb2
from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.common.v1 import taxonomy_pb2 as tx
from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.session.v1 import session_pb2
from orchestrator.api.task.v1 import task_pb2
from orchestrator.common.ids import root_task_id
from orchestrator.common.settings import Settings
from orchestrator.task.choreography.sessions import DURABLE as TASK_DURABLE
from tests.integration.conftest import Mesh
from tests.support.mesh import wait_until

pytestmark = pytest.mark.timeout(90)

TS = task_pb2.TaskStatus
SS = session_pb2.SessionStatus
Stub = Any  # the generated stubs are typed for the synchronous API


async def _agent(mesh: Mesh) -> str:
    request = agent_pb2.RegisterAgentRequest(
        name=f"AGENT-CHOREO-{uuid.uuid4().hex[:10].upper()}",
        agent_type=agent_pb2.AGENT_TYPE_IMPLEMENTER,
        primary_capabilities=[tx.CAPABILITY_CODE_GENERATION],
        max_concurrent_tasks=50,
        actor="tests",
    )
    agent = (await mesh.agents.RegisterAgent(request)).agent
    await mesh.agents.Heartbeat(agent_pb2.HeartbeatRequest(agent_id=agent.id))
    return str(agent.id)


async def _session(mesh: Mesh, prompt: str, **config: str) -> str:
    created = await mesh.sessions.CreateSession(
        session_pb2.CreateSessionRequest(
            title="CHOREO build two files",
            initial_prompt=prompt,
            session_type=session_pb2.SESSION_TYPE_EXECUTION,
            model_identifier="local/scripted",
            agent_config={"max_depth": "1", "command": "true", **config},
        )
    )
    sid = str(created.session.id)
    await mesh.sessions.StartSession(session_pb2.StartSessionRequest(session_id=sid))
    return sid


async def _tasks(mesh: Mesh, sid: str, **filters: Any) -> list[task_pb2.Task]:
    reply = await mesh.tasks.ListTasks(task_pb2.ListTasksRequest(session_id=sid, **filters))
    return list(reply.tasks)


async def _get_session(mesh: Mesh, sid: str) -> session_pb2.Session:
    reply = await mesh.sessions.GetSession(session_pb2.GetSessionRequest(session_id=sid))
    session: session_pb2.Session = reply.session
    return session


async def _work(mesh: Mesh, sid: str, agent_id: str, fail: frozenset[str] = frozenset()) -> None:
    """Plays the worker until the session ends: every assigned task of the session is started
    and completed (or failed for good when its title says one of `fail`) with its fencing
    token; `agent_id` is kept online meanwhile and deregistered at the end."""
    ended = (SS.SESSION_STATUS_RUNNING, SS.SESSION_STATUS_PENDING)

    async def step() -> bool:
        await mesh.agents.Heartbeat(agent_pb2.HeartbeatRequest(agent_id=agent_id))
        for task in await _tasks(mesh, sid, statuses=[TS.TASK_STATUS_ASSIGNED]):
            # Agents other tests left online may take some; the worker acts for whichever.
            assert task.assigned_agent_id and task.fencing_token >= 1
            assert task.input["command"] == "true", "the leaf carries the session's command"
            token = task.fencing_token
            await mesh.tasks.StartTask(
                task_pb2.StartTaskRequest(task_id=task.id, fencing_token=token, actor="w")
            )
            if any(word in task.title for word in fail):
                await mesh.tasks.FailTask(
                    task_pb2.FailTaskRequest(
                        task_id=task.id, fencing_token=token, error="boom", retryable=False
                    )
                )
            else:
                await mesh.tasks.CompleteTask(
                    task_pb2.CompleteTaskRequest(
                        task_id=task.id,
                        fencing_token=token,
                        result=None,
                        usage=common_pb2.Usage(input_tokens=10, output_tokens=5, cost_usd=0.01),
                    )
                )
        return (await _get_session(mesh, sid)).status not in ended

    await wait_until(step, within=20, what=f"session {sid} to end")
    await mesh.agents.DeregisterAgent(agent_pb2.DeregisterAgentRequest(agent_id=agent_id))


async def test_a_started_session_runs_to_completion(mesh: Mesh) -> None:
    agent_id = await _agent(mesh)
    sid = await _session(mesh, "1. write a\n2. write b")

    async def decomposed() -> bool:
        return len(await _tasks(mesh, sid)) >= 3

    await wait_until(decomposed, within=20, what="the root task and its subtasks")
    roots = await _tasks(mesh, sid, roots_only=True)
    assert [r.id for r in roots] == [root_task_id(sid)]
    assert roots[0].title == "CHOREO build two files" and len(roots[0].child_ids) == 2

    await _work(mesh, sid, agent_id)

    tasks = await _tasks(mesh, sid)
    assert all(t.status == TS.TASK_STATUS_COMPLETED for t in tasks)
    session = await _get_session(mesh, sid)

    async def counted() -> bool:
        m = (await _get_session(mesh, sid)).metrics
        return m.tasks_completed == len(tasks)

    await wait_until(counted, within=10, what="the task counts")
    session = await _get_session(mesh, sid)
    assert session.status == SS.SESSION_STATUS_COMPLETED
    assert session.metrics.tasks_total == len(tasks) == 3
    assert session.metrics.tasks_failed == 0 and session.metrics.tasks_skipped == 0
    assert session.metrics.usage.input_tokens == 20
    assert session.metrics.usage.output_tokens == 10


async def test_a_failed_step_skips_its_dependants(mesh: Mesh) -> None:
    agent_id = await _agent(mesh)
    sid = await _session(mesh, "1. write a\n2. write b\n3. write c")
    await _work(mesh, sid, agent_id, fail=frozenset({"write b"}))

    session = await _get_session(mesh, sid)
    by_title = {t.title: t for t in await _tasks(mesh, sid) if t.parent_id}
    statuses = sorted(TS.Name(t.status) for t in by_title.values())
    assert statuses == ["TASK_STATUS_COMPLETED", "TASK_STATUS_FAILED", "TASK_STATUS_SKIPPED"]
    assert session.status == SS.SESSION_STATUS_PARTIALLY_COMPLETED
    assert session.metrics.tasks_completed == 1
    assert session.metrics.tasks_failed == 2  # the step and the root
    assert session.metrics.tasks_skipped == 1


async def test_a_step_failing_with_nothing_done_fails_the_session(mesh: Mesh) -> None:
    agent_id = await _agent(mesh)
    sid = await _session(mesh, "1. write a\n2. write b")
    await _work(mesh, sid, agent_id, fail=frozenset({"write a"}))
    session = await _get_session(mesh, sid)
    assert session.status == SS.SESSION_STATUS_FAILED
    assert session.error


async def test_a_repeated_start_event_makes_one_root(
    mesh: Mesh, settings: Settings, nc: Any, pool: asyncpg.Pool
) -> None:
    sid = await _session(mesh, "1. write a\n2. write b")

    async def decomposed() -> bool:
        return len(await _tasks(mesh, sid)) >= 3

    await wait_until(decomposed, within=20, what="the root task and its subtasks")
    js = nc.jetstream()
    sub = await js.pull_subscribe(f"orch.session.{sid}.started", durable=None)
    [msg] = await sub.fetch(1, timeout=5)
    started = events_pb2.Event.FromString(msg.data)
    # The same event again (a redelivery) and a copy under a new id (a repeated start).
    again = events_pb2.Event()
    again.CopyFrom(started)
    again.event_id = str(uuid.uuid4())
    await js.publish(msg.subject, msg.data)
    await js.publish(msg.subject, again.SerializeToString())

    async def handled() -> bool:
        seen = await pool.fetchval(
            "SELECT count(*) FROM task.inbox WHERE consumer = $1 AND event_id = $2",
            TASK_DURABLE,
            uuid.UUID(again.event_id),
        )
        return bool(seen)

    await wait_until(handled, within=20, what="the copied start event to be handled")
    assert [r.id for r in await _tasks(mesh, sid, roots_only=True)] == [root_task_id(sid)]
    assert len(await _tasks(mesh, sid)) == 3
