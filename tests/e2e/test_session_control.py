"""People steering running sessions, end to end on real servers, service processes and
`orch agent run` workers: pause and resume, cancel, and approving or rejecting finished work
over REST and the `orch` command line.

A private process mesh for the module (`tests.support.procs`), so no agent of another test can
be routed these tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest

from orchestrator.task.choreography.sessions import DURABLE as TASK_DURABLE
from tests.support.mesh import wait_until
from tests.support.procs import (
    ORCH,
    ProcessMesh,
    WorkerProcess,
    clean_environment,
    per_task,
    process_mesh,
    start_session,
    stream_events,
    tasks_of,
    wait_for_session,
)

pytestmark = pytest.mark.timeout(110)

# Each run notes its start, waits until the test opens the gate in the worker's folder, then
# notes its end.
GATED = (
    'echo "start $ORCH_TASK_ID" >> runs.txt; '
    "while [ ! -f open ]; do sleep 0.05; done; "
    'echo "done $ORCH_TASK_ID" >> runs.txt'
)
CHAIN = "1. write the parser\n2. write the tests for it\n3. document the parser"


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


def _started(worker: WorkerProcess) -> list[str]:
    return [line.split()[1] for line in worker.lines() if line.startswith("start ")]


def _done(worker: WorkerProcess) -> list[str]:
    return [line.split()[1] for line in worker.lines() if line.startswith("done ")]


async def _task_service_applied(mesh: ProcessMesh, seq: int) -> bool:
    """True once the task service's session consumer has handled stream message `seq`."""
    nc = await nats.connect(mesh.nats_url)
    try:
        info = await nc.jetstream().consumer_info("ORCH", TASK_DURABLE)
        return bool(info.ack_floor and info.ack_floor.stream_seq >= seq)
    finally:
        await nc.close()


async def _session_event_seq(mesh: ProcessMesh, session_id: str, kind: str) -> int:
    """The stream sequence of the session's one `session.<kind>` event. The reply to a control
    call comes once the change is committed; its event is relayed from the outbox just after,
    so this waits for it to reach the stream."""
    found: list[int] = []

    async def on_stream() -> bool:
        events = await stream_events(mesh.nats_url, f"orch.session.{session_id}.>")
        found[:] = [e.seq for e in events if e.type == f"session.{kind}"]
        return bool(found)

    await wait_until(on_stream, within=15, what=f"session.{kind} on the stream")
    [seq] = found
    return seq


async def test_pause_holds_new_work_back_and_resume_runs_the_rest(
    mesh: ProcessMesh, http: httpx.AsyncClient
) -> None:
    worker = await mesh.start_worker("AGENT-CTL-PAUSE", max_tasks=2)
    session_id = await start_session(http, "IND-C1 parser", CHAIN, max_depth="1", command=GATED)

    async def first_started() -> bool:
        return bool(_started(worker))

    await wait_until(first_started, within=30, what="the first step to start")
    paused = await http.post(f"/sessions/{session_id}/pause", json={"reason": "lunch"})
    assert paused.status_code == 200 and paused.json()["status"] == "paused", paused.text
    paused_seq = await _session_event_seq(mesh, session_id, "paused")
    await wait_until(
        lambda: _task_service_applied(mesh, paused_seq), what="the task service to see the pause"
    )
    # The running step is not stopped by a pause: it runs to its end.
    (worker.workspace / "open").touch()
    [first] = _started(worker)

    async def first_done_and_next_ready() -> bool:
        tasks = {t["id"]: t for t in await tasks_of(http, session_id)}
        return tasks[first]["status"] == "completed" and any(
            t["status"] == "ready" and t["parent_id"] for t in tasks.values()
        )

    await wait_until(first_done_and_next_ready, what="step 1 to end and step 2 to be ready")
    # A few scheduler ticks' time (it runs every 0.3 s and on every change) to see it hold back.
    await asyncio.sleep(1.5)
    during = await tasks_of(http, session_id)
    assert _started(worker) == [first]
    assert sorted(t["status"] for t in during if t["parent_id"]) == [
        "completed",
        "pending",
        "ready",
    ]
    assert (await http.get(f"/sessions/{session_id}")).json()["status"] == "paused"

    resumed = await http.post(f"/sessions/{session_id}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "running", resumed.text
    final = await wait_for_session(http, session_id, {"completed"})
    resumed_seq = await _session_event_seq(mesh, session_id, "resumed")
    events = await stream_events(mesh.nats_url, f"orch.task.{session_id}.>")
    tasks = await tasks_of(http, session_id)
    leaves = [t for t in tasks if t["parent_id"]]

    # Nothing was assigned or started between the pause and the resume; step 1 ended then.
    between = [e.type for e in events if paused_seq < e.seq < resumed_seq]
    assert "task.assigned" not in between and "task.started" not in between
    assert "task.completed" in between
    assert {t["status"] for t in tasks} == {"completed"}
    assert sorted(_done(worker)) == sorted(t["id"] for t in leaves) and len(leaves) == 3
    assert all(c["task.completed"] == 1 for c in per_task(events).values())
    assert final["metrics"]["tasks_completed"] == len(tasks)
    await worker.stop()


async def test_cancelling_a_session_kills_its_running_work_and_cancels_the_rest(
    mesh: ProcessMesh, http: httpx.AsyncClient
) -> None:
    worker = await mesh.start_worker("AGENT-CTL-CANCEL")
    session_id = await start_session(http, "IND-C2 parser", CHAIN, max_depth="1", command=GATED)

    async def running() -> bool:
        return bool(_started(worker)) and bool(worker.runs())

    await wait_until(running, within=30, what="the first step to run")
    # A running session is stopped, or paused then cancelled: cancel applies to paused ones.
    refused = await http.post(f"/sessions/{session_id}/cancel")
    assert refused.status_code == 409, refused.text
    assert (await http.post(f"/sessions/{session_id}/pause")).status_code == 200
    cancelled = await http.post(f"/sessions/{session_id}/cancel", json={"reason": "wrong repo"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    async def all_cancelled() -> bool:
        return {t["status"] for t in await tasks_of(http, session_id)} == {"cancelled"}

    await wait_until(all_cancelled, what="every task to be cancelled")

    async def run_gone() -> bool:
        return worker.runs() == []

    await wait_until(run_gone, what="the running step's processes to be killed")
    # Opening the gate now changes nothing: no run is left to pass it.
    (worker.workspace / "open").touch()
    final = (await http.get(f"/sessions/{session_id}")).json()
    counts: dict[str, Any] = {}

    async def cancellations_relayed() -> bool:
        # Committed cancellations reach the stream through the outbox, a moment later.
        counts.update(per_task(await stream_events(mesh.nats_url, f"orch.task.{session_id}.>")))
        return len(counts) > 0 and all(c["task.cancelled"] >= 1 for c in counts.values())

    await wait_until(cancellations_relayed, what="every cancellation on the stream")
    # An ended session takes no new work.
    cancelled_seq = await _session_event_seq(mesh, session_id, "cancelled")
    await wait_until(
        lambda: _task_service_applied(mesh, cancelled_seq), what="the task service to see it"
    )
    late = await http.post("/tasks", json={"session_id": session_id, "title": "one more step"})

    assert late.status_code == 409 and late.json()["error"]["code"] == "failed_precondition"
    assert len(await tasks_of(http, session_id)) == len(counts)
    assert final["status"] == "cancelled"
    assert len(_started(worker)) == 1 and _done(worker) == []
    assert all(c["task.cancelled"] == 1 and c["task.completed"] == 0 for c in counts.values())
    await worker.stop()


async def _orch_task(mesh: ProcessMesh, *args: str) -> tuple[int, str]:
    env = {
        **clean_environment(),
        "ORCH_TASK_ADDR": mesh.task_addr,
        "ORCH_DATA_DIR": str(mesh.root / "cli-data"),
    }
    proc = await asyncio.create_subprocess_exec(
        *ORCH,
        "task",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, out.decode()


async def test_finished_work_waits_for_approval_over_rest_and_the_command_line(
    mesh: ProcessMesh, http: httpx.AsyncClient
) -> None:
    worker = await mesh.start_worker("AGENT-CTL-REVIEW", max_tasks=5)
    # Two gated steps keep the root, and so the session, running while the reviews go on; the
    # reviewed tasks join the root as more subtasks.
    session_id = await start_session(
        http, "IND-C3 review", "- hold one\n- hold two", max_depth="1", command=GATED
    )

    async def decomposed() -> bool:
        return len(await tasks_of(http, session_id)) == 3

    await wait_until(decomposed, what="the session's root task to be decomposed")
    [root] = [t for t in await tasks_of(http, session_id) if not t["parent_id"]]
    run_once = 'echo "ran $ORCH_TASK_ID" >> reviewed.txt'

    async def create(title: str) -> dict[str, Any]:
        body = {
            "session_id": session_id,
            "parent_id": root["id"],
            "title": title,
            "requires_approval": True,
            "input": {"command": run_once},
        }
        reply = await http.post("/tasks", json=body)
        assert reply.status_code == 201, reply.text
        return dict(reply.json())

    by_rest, by_cli, rejected = [await create(t) for t in ("via rest", "via cli", "redo")]
    ids = [by_rest["id"], by_cli["id"], rejected["id"]]

    async def all_awaiting() -> bool:
        tasks = {t["id"]: t for t in await tasks_of(http, session_id)}
        return all(tasks[i]["awaiting_approval"] for i in ids)

    await wait_until(all_awaiting, within=30, what="the reviewed tasks to await approval")
    for task_id in ids:
        task = (await http.get(f"/tasks/{task_id}")).json()
        assert task["status"] == "blocked" and task["status_reason"] == "awaiting approval"
    assert sorted(_ran(worker)) == sorted(ids)  # each ran once and then waited

    approved = await http.post(f"/tasks/{by_rest['id']}/approve", json={"comment": "fine"})
    assert approved.status_code == 200 and approved.json()["status"] == "completed"
    again = await http.post(f"/tasks/{by_rest['id']}/approve")
    assert again.status_code == 409  # approved already: nothing awaits approval
    code, out = await _orch_task(mesh, "approve", by_cli["id"], "--comment", "ok")
    assert code == 0, out
    assert (await http.get(f"/tasks/{by_cli['id']}")).json()["status"] == "completed"
    # Rejected: back to work with the reviewer's word in its prompt, then reviewed again.
    code, out = await _orch_task(mesh, "reject", rejected["id"], "--comment", "use tabs")
    assert code == 0, out

    async def awaiting_again() -> bool:
        task = (await http.get(f"/tasks/{rejected['id']}")).json()
        return bool(task["awaiting_approval"]) and _ran(worker).count(rejected["id"]) == 2

    await wait_until(awaiting_again, within=30, what="the rejected task to run and wait again")
    redo = (await http.get(f"/tasks/{rejected['id']}")).json()
    assert "use tabs" in redo["description"]
    assert [r["approved"] for r in redo["reviews"]] == [False]
    refused = await http.post(f"/tasks/{rejected['id']}/reject", json={"comment": ""})
    assert refused.status_code == 422  # a rejection must say what to change
    rest_reject = await http.post(f"/tasks/{rejected['id']}/reject", json={"comment": "and docs"})
    assert rest_reject.status_code == 200 and rest_reject.json()["status"] == "ready"

    async def awaiting_third() -> bool:
        task = (await http.get(f"/tasks/{rejected['id']}")).json()
        return bool(task["awaiting_approval"]) and _ran(worker).count(rejected["id"]) == 3

    await wait_until(awaiting_third, within=30, what="the task to be reviewed a third time")
    code, out = await _orch_task(mesh, "approve", rejected["id"])
    assert code == 0, out

    (worker.workspace / "open").touch()
    await wait_for_session(http, session_id, {"completed"})
    events = await stream_events(mesh.nats_url, f"orch.task.{session_id}.>")
    counts = per_task(events)
    tasks = {t["id"]: t for t in await tasks_of(http, session_id)}

    assert {tasks[i]["status"] for i in ids} == {"completed"}
    assert [counts[i]["task.completed"] for i in ids] == [1, 1, 1]
    assert [counts[i]["task.rejected"] for i in ids] == [0, 0, 2]
    assert [counts[i]["task.started"] for i in ids] == [1, 1, 3]
    assert sorted(_ran(worker)) == sorted([*ids, rejected["id"], rejected["id"]])
    assert [r["approved"] for r in tasks[rejected["id"]]["reviews"]] == [False, False, True]
    await worker.stop()


def _ran(worker: WorkerProcess) -> list[str]:
    return [line.split()[1] for line in worker.lines("reviewed.txt")]


async def test_a_top_level_task_added_through_the_api_does_not_end_the_session(
    mesh: ProcessMesh, http: httpx.AsyncClient
) -> None:
    # Two slots: the root holds one behind its gate while the extra task takes the other.
    worker = await mesh.start_worker("AGENT-CTL-EXTRA", max_tasks=2)
    session_id = await start_session(http, "IND-C4 extra", "hold", max_depth="0", command=GATED)
    body = {"session_id": session_id, "title": "extra", "input": {"command": "true"}}
    extra = (await http.post("/tasks", json=body)).json()

    async def extra_done() -> bool:
        return bool((await http.get(f"/tasks/{extra['id']}")).json()["status"] == "completed")

    await wait_until(extra_done, within=30, what="the extra task to complete")
    # The session's root still runs (behind its gate): the session must still be running.
    assert (await http.get(f"/sessions/{session_id}")).json()["status"] == "running"
    (worker.workspace / "open").touch()
    await wait_for_session(http, session_id, {"completed"})
    await worker.stop()
