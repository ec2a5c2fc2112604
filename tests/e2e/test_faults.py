"""Faults against real servers and real service processes: a worker, the task service or NATS
dies mid-run, and still nothing is lost and nothing is done twice.

One private mesh for the module (`tests.support.procs`): its own embedded PostgreSQL, Valkey and
NATS, the four services and the gateway as separate processes under the project's Supervisor (so
a killed service is started again, as under `orch up`), and `orch agent run` workers.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import httpx
import pytest

from orchestrator.api.task.v1 import task_pb2 as pb
from orchestrator.api.task.v1 import task_pb2_grpc
from orchestrator.worker.config import agent_id_for
from tests.support.mesh import wait_until
from tests.support.procs import (
    ProcessMesh,
    WorkerProcess,
    per_task,
    process_mesh,
    start_session,
    stream_events,
    tasks_of,
    wait_for_session,
)

pytestmark = pytest.mark.timeout(110)

# Each run leaves a line when it starts and one when it ran to its end, in its worker's folder.
RUN = (
    'echo "start $ORCH_TASK_ID" >> runs.txt; sleep {seconds}; echo "done $ORCH_TASK_ID" >> runs.txt'
)
# Every event a task that ran once, undisturbed, has on the stream.
LIFE = ("task.created", "task.ready", "task.assigned", "task.started", "task.completed")


@pytest.fixture(scope="module")
async def mesh() -> AsyncIterator[ProcessMesh]:
    async with process_mesh() as running:
        yield running


@pytest.fixture
async def http(mesh: ProcessMesh) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=mesh.gateway + "/api/v1", headers=mesh.headers, timeout=15
    ) as client:
        yield client
    await mesh.stop_workers()


async def test_a_task_whose_worker_is_killed_completes_once_on_another_worker(
    mesh: ProcessMesh, http: httpx.AsyncClient
) -> None:
    first = await mesh.start_worker("AGENT-FAULT-A")
    second = await mesh.start_worker("AGENT-FAULT-B")
    session_id = await start_session(
        http, "IND-F1 one job", "run the job", max_depth="0", command=RUN.format(seconds=3)
    )

    async def started() -> bool:
        return bool(first.lines() or second.lines())

    await wait_until(started, within=30, what="the task to start on a worker")
    victim, survivor = (first, second) if first.lines() else (second, first)
    [task] = await tasks_of(http, session_id)
    assert task["status"] == "in_progress" and task["assigned_agent_id"] == victim.agent_id
    await victim.kill()

    final = await wait_for_session(http, session_id, {"completed"})
    [task] = await tasks_of(http, session_id)
    events = await stream_events(mesh.nats_url, f"orch.task.{session_id}.>")
    counts = per_task(events)[task["id"]]
    started_on = [e.event.task.task.assigned_agent_id for e in events if e.type == "task.started"]

    assert task["status"] == "completed" and task["result"]["exit_code"] == 0
    # The dead worker's lease was taken back — its agent went offline, or the lease ran out,
    # whichever came first — and the task went to the other one: started twice, completed
    # once, by the survivor, whose run went from start to end.
    assert counts["task.completed"] == 1, counts
    assert counts["task.lease_expired"] + counts["task.released"] == 1, counts
    assert started_on == [victim.agent_id, survivor.agent_id]
    assert survivor.lines() == [f"start {task['id']}", f"done {task['id']}"]
    # The killed worker's run never reached its end.
    assert victim.lines() == [f"start {task['id']}"]
    assert final["metrics"]["tasks_completed"] == 1
    await survivor.stop()


def _done_runs(workers: list[WorkerProcess]) -> Counter[str]:
    """How many runs went to their end, by task id, over all the workers' folders."""
    return Counter(
        line.split()[1] for w in workers for line in w.lines() if line.startswith("done ")
    )


async def test_the_task_service_killed_mid_run_comes_back_and_every_task_completes_once(
    mesh: ProcessMesh, http: httpx.AsyncClient
) -> None:
    # Leases long enough to outlast the restart: this test is about the service, not leases.
    workers = [
        await mesh.start_worker(f"AGENT-TASKSVC-{n}", max_tasks=2, lease_seconds=30) for n in "AB"
    ]
    prompt = "- write the parser\n- write the lexer\n- write the printer\n- write the checker"
    session_id = await start_session(
        http, "IND-F2 parser kit", prompt, max_depth="1", command=RUN.format(seconds=1)
    )

    async def running() -> bool:
        return any(w.lines() for w in workers)

    await wait_until(running, within=30, what="the first step to start")
    await mesh.kill_service("task")

    final = await wait_for_session(http, session_id, {"completed"}, within=60)
    tasks = await tasks_of(http, session_id)
    leaves = [t for t in tasks if t["parent_id"]]
    counts = per_task(await stream_events(mesh.nats_url, f"orch.task.{session_id}.>"))

    assert len(leaves) == 4 and {t["status"] for t in tasks} == {"completed"}
    # One completion per task on the stream, and each step's command ran to its end once.
    assert {t["id"]: counts[t["id"]]["task.completed"] for t in tasks} == {
        t["id"]: 1 for t in tasks
    }
    assert _done_runs(workers) == Counter({t["id"]: 1 for t in leaves})
    assert final["metrics"]["tasks_total"] == final["metrics"]["tasks_completed"] == len(tasks)
    for worker in workers:
        await worker.stop()


async def test_nats_restarted_mid_run_loses_no_event(
    mesh: ProcessMesh, http: httpx.AsyncClient
) -> None:
    workers = [await mesh.start_worker(f"AGENT-NATS-{n}", max_tasks=2) for n in "AB"]
    prompt = "1. write the parser\n2. write the tests for it\n3. document the parser"
    session_id = await start_session(
        http, "IND-F3 parser", prompt, max_depth="1", command=RUN.format(seconds=1)
    )

    async def first_step_ran() -> bool:
        return bool(_done_runs(workers))

    async def started() -> bool:
        return any(w.lines() for w in workers)

    await wait_until(started, within=30, what="the first step to start")
    server = mesh.stack.servers["nats"] if mesh.stack else None
    assert server is not None
    await server.stop()
    # While NATS is down the step ends and is completed over gRPC: its events wait in the outbox.
    await wait_until(first_step_ran, within=30, what="the first step to end while NATS is down")
    await server.start()

    final = await wait_for_session(http, session_id, {"completed"}, within=60)
    tasks = await tasks_of(http, session_id)
    events = await stream_events(mesh.nats_url, f"orch.task.{session_id}.>")
    counts = per_task(events)
    leaves = [t for t in tasks if t["parent_id"]]
    [root] = [t for t in tasks if not t["parent_id"]]

    assert len(leaves) == 3 and {t["status"] for t in tasks} == {"completed"}
    # Every step's whole life is on the stream, each event once.
    for leaf in leaves:
        assert {k: counts[leaf["id"]][k] for k in LIFE} == dict.fromkeys(LIFE, 1), counts[
            leaf["id"]
        ]
    assert counts[root["id"]]["task.created"] == counts[root["id"]]["task.completed"] == 1
    assert len({e.event.event_id for e in events}) == len(events)
    # And the session service saw all of them.
    assert final["metrics"]["tasks_total"] == final["metrics"]["tasks_completed"] == len(tasks)
    assert _done_runs(workers) == Counter({t["id"]: 1 for t in leaves})
    for worker in workers:
        await worker.stop()


async def test_a_completion_with_a_stale_fencing_token_is_refused_and_changes_nothing(
    mesh: ProcessMesh, http: httpx.AsyncClient
) -> None:
    # No worker offers security_audit, so the scheduler leaves the task to this test's hands.
    session_id = await start_session(
        http, "IND-F4 audit", "audit it", max_depth="0", capabilities="security_audit"
    )

    async def ready() -> bool:
        tasks = await tasks_of(http, session_id)
        return len(tasks) == 1 and tasks[0]["status"] == "ready"

    await wait_until(ready, within=30, what="the root task to be ready")
    [task] = await tasks_of(http, session_id)
    agent = {"agent_id": agent_id_for("AGENT-FAULT-NOBODY")}
    first = (await http.post(f"/tasks/{task['id']}/assign", json=agent)).json()
    old_token = first["fencing_token"]
    # The first lease ends (as when its worker is given up on); a new one gets a new token.
    released = await http.post(f"/tasks/{task['id']}/release", json={"fencing_token": old_token})
    assert released.status_code == 200, released.text
    again = (await http.post(f"/tasks/{task['id']}/assign", json=agent)).json()
    token = again["fencing_token"]
    assert token > old_token
    started = await http.post(f"/tasks/{task['id']}/start", json={"fencing_token": token})
    assert started.status_code == 200, started.text
    before = (await http.get(f"/tasks/{task['id']}")).json()
    assert before["status"] == "in_progress"

    async with grpc.aio.insecure_channel(mesh.task_addr) as channel:
        stub = task_pb2_grpc.TaskServiceStub(channel)
        stale = pb.CompleteTaskRequest(task_id=task["id"], fencing_token=old_token, actor="zombie")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CompleteTask(stale, timeout=10)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "stale" in (refused.value.details() or "")
    over_rest = await http.post(
        f"/tasks/{task['id']}/complete", json={"fencing_token": old_token, "result": {"x": 1}}
    )
    assert over_rest.status_code == 409
    assert over_rest.json()["error"]["code"] == "failed_precondition"
    assert (await http.get(f"/tasks/{task['id']}")).json() == before

    done = await http.post(f"/tasks/{task['id']}/complete", json={"fencing_token": token})
    assert done.status_code == 200 and done.json()["status"] == "completed", done.text
    await wait_for_session(http, session_id, {"completed"})
    counts = per_task(await stream_events(mesh.nats_url, f"orch.task.{session_id}.>"))
    assert counts[task["id"]]["task.completed"] == 1


async def _run_through(
    mesh: ProcessMesh, http: httpx.AsyncClient, label: str, fault: Callable[[], Awaitable[None]]
) -> None:
    """A three-step session whose first step runs while `fault` happens; then it must complete
    with every task completed once, every run to its end once, and every event on the stream
    once."""
    title = f"IND-F {label} parser"
    workers = [
        await mesh.start_worker(f"AGENT-{label.upper()}-{n}", max_tasks=2, lease_seconds=30)
        for n in "AB"
    ]
    prompt = "1. write the parser\n2. write the tests for it\n3. document the parser"
    session_id = await start_session(
        http, title, prompt, max_depth="1", command=RUN.format(seconds=2)
    )

    async def started() -> bool:
        return any(w.lines() for w in workers)

    await wait_until(started, within=30, what="the first step to start")
    await fault()

    final = await wait_for_session(http, session_id, {"completed"}, within=60)
    tasks = await tasks_of(http, session_id)
    events = await stream_events(mesh.nats_url, f"orch.task.{session_id}.>")
    counts = per_task(events)
    leaves = [t for t in tasks if t["parent_id"]]

    assert len(leaves) == 3 and {t["status"] for t in tasks} == {"completed"}
    for leaf in leaves:
        assert {k: counts[leaf["id"]][k] for k in LIFE} == dict.fromkeys(LIFE, 1), counts[
            leaf["id"]
        ]
    assert len({e.event.event_id for e in events}) == len(events)
    assert final["metrics"]["tasks_total"] == final["metrics"]["tasks_completed"] == len(tasks)
    assert _done_runs(workers) == Counter({t["id"]: 1 for t in leaves})
    for worker in workers:
        await worker.stop()


def _outage(mesh: ProcessMesh, server_name: str, seconds: float) -> Callable[[], Awaitable[None]]:
    """Stops one of the mesh's servers for `seconds`, then starts it again (same port, data)."""

    async def fault() -> None:
        server = mesh.stack.servers[server_name] if mesh.stack else None
        assert server is not None
        await server.stop()
        await asyncio.sleep(seconds)
        await server.start()

    return fault


async def test_postgres_restarted_mid_run_loses_nothing_and_runs_nothing_twice(
    mesh: ProcessMesh, http: httpx.AsyncClient
) -> None:
    # The running step ends while PostgreSQL is down: its worker's report waits and retries.
    await _run_through(mesh, http, "postgres", _outage(mesh, "postgres", 3))


async def test_redis_restarted_mid_run_loses_nothing_and_runs_nothing_twice(
    mesh: ProcessMesh, http: httpx.AsyncClient
) -> None:
    # Longer than the agents' heartbeat TTL (1 s here): their silence was Redis's, not theirs.
    await _run_through(mesh, http, "redis", _outage(mesh, "redis", 3))


async def test_the_agent_service_killed_mid_run_takes_no_task_off_its_worker(
    mesh: ProcessMesh, http: httpx.AsyncClient
) -> None:
    # No heartbeat lands until the supervisor has started it again, longer than the TTL (1 s).
    await _run_through(mesh, http, "agentsvc", lambda: mesh.kill_service("agent"))


async def test_the_session_service_killed_mid_run_still_ends_the_session_once(
    mesh: ProcessMesh, http: httpx.AsyncClient
) -> None:
    # It follows the task events on a durable consumer: what it missed while down is
    # delivered when the supervisor has started it again, and counted once.
    await _run_through(mesh, http, "sessionsvc", lambda: mesh.kill_service("session"))
