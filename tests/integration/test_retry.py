"""Retry resumes a session's work over the real services: the test plays the worker. A retried
session that starts again runs what failed (and what was skipped for it) and never again what
completed; the retry names the checkpoint it resumes from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from orchestrator.api.agent.v1 import agent_pb2
from orchestrator.api.session.v1 import session_pb2
from orchestrator.api.task.v1 import task_pb2
from orchestrator.common.protoconv import struct
from tests.integration.conftest import Mesh, configuration_agent
from tests.support.mesh import wait_until

pytestmark = pytest.mark.timeout(90)

TS = task_pb2.TaskStatus
SS = session_pb2.SessionStatus
Stub = Any
STEPS = "1. configure alpha\n2. configure beta\n3. configure gamma"


@pytest.fixture
async def agent(mesh: Mesh) -> AsyncIterator[str]:
    async with configuration_agent(mesh, "AGENT-RETRY") as ident:
        yield ident


class Worker:
    """Plays the worker: completes every assigned step, fails those named in `failing`."""

    def __init__(self, mesh: Mesh, sid: str, agent: str) -> None:
        self.mesh, self.sid, self.agent = mesh, sid, agent
        self.failing: set[str] = set()
        self.runs: list[str] = []

    async def step(self) -> None:
        await self.mesh.agents.Heartbeat(agent_pb2.HeartbeatRequest(agent_id=self.agent))
        reply = await self.mesh.tasks.ListTasks(
            task_pb2.ListTasksRequest(session_id=self.sid, statuses=[TS.TASK_STATUS_ASSIGNED])
        )
        for task in reply.tasks:
            token, tasks = task.fencing_token, self.mesh.tasks
            await tasks.StartTask(task_pb2.StartTaskRequest(task_id=task.id, fencing_token=token))
            self.runs.append(task.title)
            if task.title in self.failing:
                await tasks.FailTask(
                    task_pb2.FailTaskRequest(
                        task_id=task.id, fencing_token=token, error="exit 1", retryable=True
                    )
                )
            else:
                await tasks.CompleteTask(
                    task_pb2.CompleteTaskRequest(task_id=task.id, fencing_token=token)
                )

    async def until(self, status: int, what: str) -> session_pb2.Session:
        async def reached() -> bool:
            await self.step()
            return (await _get(self.mesh, self.sid)).status == status

        await wait_until(reached, within=30, what=what)
        return await _get(self.mesh, self.sid)


async def _session(mesh: Mesh, prompt: str = STEPS) -> str:
    config = {"max_depth": "1", "command": "true", "capabilities": "configuration"}
    created = await mesh.sessions.CreateSession(
        session_pb2.CreateSessionRequest(
            title="RETRY configure three things",
            initial_prompt=prompt,
            # One attempt per step, so a failing step fails for good at once.
            agent_config={**config, "max_attempts": "1"},
        )
    )
    sid = str(created.session.id)
    await mesh.sessions.StartSession(session_pb2.StartSessionRequest(session_id=sid))
    return sid


async def _get(mesh: Mesh, sid: str) -> session_pb2.Session:
    reply = await mesh.sessions.GetSession(session_pb2.GetSessionRequest(session_id=sid))
    session: session_pb2.Session = reply.session
    return session


async def _tasks(mesh: Mesh, sid: str) -> dict[str, task_pb2.Task]:
    reply = await mesh.tasks.ListTasks(task_pb2.ListTasksRequest(session_id=sid))
    return {t.title if t.parent_id else "root": t for t in reply.tasks}


async def test_a_retried_session_reruns_what_failed_and_never_what_completed(
    mesh: Mesh, agent: str
) -> None:
    sid = await _session(mesh)
    worker = Worker(mesh, sid, agent)
    worker.failing.add("configure beta")

    async def alpha_done() -> bool:
        await worker.step()
        alpha = (await _tasks(mesh, sid)).get("configure alpha")
        return alpha is not None and alpha.status == TS.TASK_STATUS_COMPLETED

    await wait_until(alpha_done, within=30, what="the first step to complete")
    await mesh.sessions.AddCheckpoint(
        session_pb2.AddCheckpointRequest(session_id=sid, data=struct({"done": ["alpha"]}))
    )
    # A degraded session whose work fails is FAILED (a running one would end partially
    # completed, which is final); FAILED can be retried.
    await mesh.sessions.DegradeSession(
        session_pb2.DegradeSessionRequest(session_id=sid, reason="beta keeps breaking")
    )
    failed = await worker.until(SS.SESSION_STATUS_FAILED, "the session to fail")
    assert failed.metrics.tasks_completed == 1 and failed.metrics.tasks_skipped == 1
    before = await _tasks(mesh, sid)
    assert before["configure beta"].status == TS.TASK_STATUS_FAILED
    assert before["configure gamma"].status == TS.TASK_STATUS_SKIPPED
    assert before["root"].status == TS.TASK_STATUS_FAILED

    worker.failing.clear()  # the cause is fixed
    retried = await mesh.sessions.RetrySession(session_pb2.RetrySessionRequest(session_id=sid))
    assert retried.session.status == SS.SESSION_STATUS_PENDING
    assert retried.resume_from.sequence == 1
    assert dict(retried.resume_from.data) == {"done": ["alpha"]}
    await mesh.sessions.StartSession(session_pb2.StartSessionRequest(session_id=sid))

    done = await worker.until(SS.SESSION_STATUS_COMPLETED, "the retried session to complete")
    after = await _tasks(mesh, sid)
    assert {t.status for t in after.values()} == {TS.TASK_STATUS_COMPLETED}
    assert worker.runs.count("configure alpha") == 1, "a completed step never runs again"
    assert worker.runs.count("configure beta") == 2 and worker.runs.count("configure gamma") == 1
    assert after["configure alpha"].version == before["configure alpha"].version
    # Attempts count failures: the one before the retry is forgotten with the reopening.
    assert (before["configure beta"].attempt_count, after["configure beta"].attempt_count) == (1, 0)
    assert after["configure beta"].fencing_token > before["configure beta"].fencing_token

    async def counted() -> bool:
        m = (await _get(mesh, sid)).metrics
        return (m.tasks_completed, m.tasks_failed, m.tasks_skipped) == (4, 0, 0)

    await wait_until(counted, within=10, what="the counts to follow the reopened tasks")
    assert done.metrics.retry_count == 1


async def test_a_failed_session_with_nothing_done_runs_everything_again(
    mesh: Mesh, agent: str
) -> None:
    sid = await _session(mesh, "1. configure one\n2. configure two")
    worker = Worker(mesh, sid, agent)
    worker.failing.add("configure one")
    failed = await worker.until(SS.SESSION_STATUS_FAILED, "the session to fail")
    assert failed.error
    worker.failing.clear()
    retried = await mesh.sessions.RetrySession(session_pb2.RetrySessionRequest(session_id=sid))
    assert not retried.HasField("resume_from"), "no checkpoint was taken"
    await mesh.sessions.StartSession(session_pb2.StartSessionRequest(session_id=sid))
    await worker.until(SS.SESSION_STATUS_COMPLETED, "the retried session to complete")
    assert worker.runs == ["configure one", "configure one", "configure two"]


async def test_a_first_start_reopens_nothing(mesh: Mesh, agent: str) -> None:
    """Only a retried session's start reopens work: a step cancelled by hand in a session that
    never failed stays cancelled."""
    sid = await _session(mesh, "1. configure one\n2. configure two")

    async def created() -> bool:
        return len(await _tasks(mesh, sid)) == 3

    await wait_until(created, within=20, what="the session's tasks")
    two = (await _tasks(mesh, sid))["configure two"]
    await mesh.tasks.CancelTask(task_pb2.CancelTaskRequest(task_id=two.id, reason="not needed"))
    await mesh.sessions.PauseSession(session_pb2.PauseSessionRequest(session_id=sid))
    await mesh.sessions.ResumeSession(session_pb2.ResumeSessionRequest(session_id=sid))
    assert (await _tasks(mesh, sid))["configure two"].status == TS.TASK_STATUS_CANCELLED
    await mesh.sessions.StopSession(session_pb2.StopSessionRequest(session_id=sid))


async def test_a_retry_whose_work_finished_after_the_session_ended_completes_as_it_starts(
    mesh: Mesh, agent: str
) -> None:
    created = await mesh.sessions.CreateSession(
        session_pb2.CreateSessionRequest(
            title="RETRY configure it late",
            initial_prompt="configure it late",
            # No decomposition: the root task is the one step.
            agent_config={"max_depth": "0", "command": "true", "capabilities": "configuration"},
        )
    )
    sid = str(created.session.id)
    await mesh.sessions.StartSession(session_pb2.StartSessionRequest(session_id=sid))

    async def assigned() -> bool:
        await mesh.agents.Heartbeat(agent_pb2.HeartbeatRequest(agent_id=agent))
        root = (await _tasks(mesh, sid)).get("root")
        return root is not None and root.status == TS.TASK_STATUS_ASSIGNED

    await wait_until(assigned, within=30, what="the root task to be assigned")
    root = (await _tasks(mesh, sid))["root"]
    token = root.fencing_token
    await mesh.tasks.StartTask(task_pb2.StartTaskRequest(task_id=root.id, fencing_token=token))
    # The operator gives up on the session while its work is still running...
    await mesh.sessions.FailSession(
        session_pb2.FailSessionRequest(session_id=sid, error="operator gave up")
    )
    # ...and then the run finishes: the root task completes after the session ended.
    await mesh.tasks.CompleteTask(
        task_pb2.CompleteTaskRequest(task_id=root.id, fencing_token=token)
    )

    async def counted() -> bool:
        return (await _get(mesh, sid)).metrics.tasks_completed == 1

    await wait_until(counted, within=15, what="the late completion to be counted")
    assert (await _get(mesh, sid)).status == SS.SESSION_STATUS_FAILED
    retried = await mesh.sessions.RetrySession(session_pb2.RetrySessionRequest(session_id=sid))
    assert retried.session.status == SS.SESSION_STATUS_PENDING
    started = await mesh.sessions.StartSession(session_pb2.StartSessionRequest(session_id=sid))
    # Nothing is left to run: it completes as it starts instead of running until it times out.
    assert started.session.status == SS.SESSION_STATUS_COMPLETED
    assert (await _tasks(mesh, sid))["root"].status == TS.TASK_STATUS_COMPLETED
