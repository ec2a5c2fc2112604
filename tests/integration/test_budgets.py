"""Budgets over the real services (PostgreSQL, NATS, the session, agent and task services): the
test plays the worker and reports usage with each run; once a session's token or cost budget is
used up it pauses with the reason, no new task is assigned, and it resumes only with a raised
budget."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest

from orchestrator.api.agent.v1 import agent_pb2
from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.session.v1 import session_pb2
from orchestrator.api.task.v1 import task_pb2
from tests.integration.conftest import Mesh, configuration_agent
from tests.support.mesh import wait_until

pytestmark = pytest.mark.timeout(90)

TS = task_pb2.TaskStatus
SS = session_pb2.SessionStatus
Stub = Any
# Steps about configuration need CONFIGURATION, which only this file's agents hold.
STEPS = "1. configure alpha\n2. configure beta\n3. configure gamma\n4. configure delta"


@pytest.fixture
async def agent(mesh: Mesh) -> AsyncIterator[str]:
    async with configuration_agent(mesh, "AGENT-BUDGET") as ident:
        yield ident


async def _session(mesh: Mesh, limits: session_pb2.SessionLimits, prompt: str = STEPS) -> str:
    created = await mesh.sessions.CreateSession(
        session_pb2.CreateSessionRequest(
            title="BUDGET configure four things",
            initial_prompt=prompt,
            agent_config={"max_depth": "1", "command": "true", "capabilities": "configuration"},
            limits=limits,
        )
    )
    sid = str(created.session.id)
    await mesh.sessions.StartSession(session_pb2.StartSessionRequest(session_id=sid))
    return sid


async def _get(mesh: Mesh, sid: str) -> session_pb2.Session:
    session: session_pb2.Session = (
        await mesh.sessions.GetSession(session_pb2.GetSessionRequest(session_id=sid))
    ).session
    return session


async def _steps(mesh: Mesh, sid: str) -> dict[str, task_pb2.Task]:
    reply = await mesh.tasks.ListTasks(task_pb2.ListTasksRequest(session_id=sid))
    return {t.title: t for t in reply.tasks if t.parent_id}


Run = Callable[[task_pb2.Task], Any]


async def _work_once(mesh: Mesh, sid: str, agent: str, run: Run) -> list[str]:
    """Starts and finishes (as `run` says) every task of the session assigned right now."""
    await mesh.agents.Heartbeat(agent_pb2.HeartbeatRequest(agent_id=agent))
    reply = await mesh.tasks.ListTasks(
        task_pb2.ListTasksRequest(session_id=sid, statuses=[TS.TASK_STATUS_ASSIGNED])
    )
    for task in reply.tasks:
        token = task.fencing_token
        await mesh.tasks.StartTask(task_pb2.StartTaskRequest(task_id=task.id, fencing_token=token))
        await run(task)
    return [t.title for t in reply.tasks]


def _complete(mesh: Mesh, tokens: int) -> Run:
    async def run(task: task_pb2.Task) -> None:
        await mesh.tasks.CompleteTask(
            task_pb2.CompleteTaskRequest(
                task_id=task.id,
                fencing_token=task.fencing_token,
                usage=common_pb2.Usage(input_tokens=tokens // 2, output_tokens=tokens // 2),
            )
        )

    return run


async def test_a_spent_token_budget_pauses_the_session_and_only_a_raised_one_resumes_it(
    mesh: Mesh, agent: str
) -> None:
    sid = await _session(mesh, session_pb2.SessionLimits(token_budget=1000))
    ran: list[str] = []

    async def paused() -> bool:
        ran.extend(await _work_once(mesh, sid, agent, _complete(mesh, 600)))
        return (await _get(mesh, sid)).status == SS.SESSION_STATUS_PAUSED

    await wait_until(paused, within=30, what="the session to pause for its budget")
    session = await _get(mesh, sid)
    assert session.status_reason == "token budget exhausted: 1,200 of 1,000 tokens"
    assert ran == ["configure alpha", "configure beta"]
    # The step after the one that spent the budget is never assigned: the scheduler counts
    # the spending itself rather than wait for the pause. However long we wait.
    await asyncio.sleep(0.5)
    ran.extend(await _work_once(mesh, sid, agent, _complete(mesh, 600)))
    await asyncio.sleep(1.5)
    steps = await _steps(mesh, sid)
    for late in ("configure gamma", "configure delta"):
        assert steps[late].status in (TS.TASK_STATUS_READY, TS.TASK_STATUS_PENDING)
        assert steps[late].fencing_token == 0, f"{late} was never assigned"
    assert ran == ["configure alpha", "configure beta"]
    session = await _get(mesh, sid)
    assert session.status == SS.SESSION_STATUS_PAUSED
    usage = session.metrics.usage
    assert usage.input_tokens + usage.output_tokens == 600 * len(ran)

    # Resuming without raising the budget, or raising it too little, is refused.
    for raise_to in (None, 600 * len(ran)):
        request = session_pb2.ResumeSessionRequest(session_id=sid, token_budget=raise_to)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await mesh.sessions.ResumeSession(request)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "token budget exhausted" in str(refused.value.details())
    assert (await _get(mesh, sid)).version == session.version

    resumed = await mesh.sessions.ResumeSession(
        session_pb2.ResumeSessionRequest(session_id=sid, token_budget=100_000)
    )
    assert resumed.session.status == SS.SESSION_STATUS_RUNNING
    assert resumed.session.limits.token_budget == 100_000

    async def completed() -> bool:
        ran.extend(await _work_once(mesh, sid, agent, _complete(mesh, 600)))
        return (await _get(mesh, sid)).status == SS.SESSION_STATUS_COMPLETED

    await wait_until(completed, within=30, what="the resumed session to complete")
    assert sorted(ran) == sorted(await _steps(mesh, sid)), "each step ran once"


async def test_a_failed_attempt_counts_against_the_budget_at_once(mesh: Mesh, agent: str) -> None:
    """The usage of an attempt that will be retried counts as soon as it fails, not only when
    the task ends for good."""
    sid = await _session(mesh, session_pb2.SessionLimits(cost_budget_usd=0.05))

    async def fail(task: task_pb2.Task) -> None:
        await mesh.tasks.FailTask(
            task_pb2.FailTaskRequest(
                task_id=task.id,
                fencing_token=task.fencing_token,
                error="model gave up",
                retryable=True,
                usage=common_pb2.Usage(output_tokens=10, cost_usd=0.08),
            )
        )

    async def failed_once() -> bool:
        return bool(await _work_once(mesh, sid, agent, fail))

    await wait_until(failed_once, within=20, what="the first step to be assigned")

    async def paused() -> bool:
        return (await _get(mesh, sid)).status == SS.SESSION_STATUS_PAUSED

    await wait_until(paused, within=10, what="the session to pause for its cost budget")
    session = await _get(mesh, sid)
    assert session.status_reason == "cost budget exhausted: $0.0800 of $0.0500"
    assert session.metrics.usage.cost_usd == pytest.approx(0.08)
    step = (await _steps(mesh, sid))["configure alpha"]
    assert step.status == TS.TASK_STATUS_READY and step.attempt_count == 1
    await mesh.sessions.StopSession(session_pb2.StopSessionRequest(session_id=sid))


async def test_usage_reported_directly_over_the_budget_pauses_the_session(mesh: Mesh) -> None:
    sid = await _session(mesh, session_pb2.SessionLimits(token_budget=50), prompt="tune nothing")
    reply = await mesh.sessions.RecordSessionUsage(
        session_pb2.RecordSessionUsageRequest(
            session_id=sid, report_id="r-1", usage=common_pb2.Usage(reasoning_tokens=50)
        )
    )
    assert reply.session.status == SS.SESSION_STATUS_PAUSED
    assert reply.session.status_reason == "token budget exhausted: 50 of 50 tokens"
    await mesh.sessions.CancelSession(session_pb2.CancelSessionRequest(session_id=sid))


async def test_a_negative_budget_on_resume_is_invalid(mesh: Mesh) -> None:
    sid = await _session(mesh, session_pb2.SessionLimits(), prompt="tune nothing")
    await mesh.sessions.PauseSession(session_pb2.PauseSessionRequest(session_id=sid))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await mesh.sessions.ResumeSession(
            session_pb2.ResumeSessionRequest(session_id=sid, cost_budget_usd=-1)
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (await _get(mesh, sid)).status == SS.SESSION_STATUS_PAUSED
    await mesh.sessions.CancelSession(session_pb2.CancelSessionRequest(session_id=sid))
