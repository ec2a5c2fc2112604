"""End to end: a session started over HTTP is decomposed, routed and run by a real shell worker,
and ends COMPLETED with every task done — all through the real services and servers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import websockets

from orchestrator.api.common.v1 import taxonomy_pb2
from orchestrator.common.settings import Settings
from orchestrator.worker.config import WorkerConfig
from orchestrator.worker.executors.shell import ShellExecutor
from orchestrator.worker.worker import Worker
from tests.support.mesh import wait_until

pytestmark = pytest.mark.timeout(90)

CAPABILITIES = ("code_generation", "testing", "test_generation", "documentation")


@contextlib.asynccontextmanager
async def _shell_worker(
    settings: Settings, command: str, label: str = "E2E"
) -> AsyncIterator[tuple[Path, WorkerConfig]]:
    """A running shell worker that can take every step of the sessions here; yields its
    workspace (removed afterwards) and its configuration."""
    workspace = Path(tempfile.mkdtemp(prefix="orch-ws-"))
    config = WorkerConfig(
        name=f"AGENT-{label}-{uuid.uuid4().hex[:6].upper()}",
        workspace=workspace,
        capabilities=tuple(
            taxonomy_pb2.Capability.Value(f"CAPABILITY_{c.upper()}") for c in CAPABILITIES
        ),
        max_tasks=2,
    )
    running = Worker(settings, config, ShellExecutor(command, 30))
    task = asyncio.create_task(running.run())
    try:
        yield workspace, config
    finally:
        await running.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
        shutil.rmtree(workspace, ignore_errors=True)


@pytest.fixture
async def worker(settings: Settings, gateway: str) -> AsyncIterator[tuple[Path, str]]:
    """A shell worker that can take every step of the session below; yields its workspace and
    its agent id."""
    async with _shell_worker(settings, 'echo "$ORCH_TASK_TITLE" >> steps.txt') as (ws, config):
        yield ws, config.agent_id


async def _session_end(ws: Any) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 60))
        event = message.get("event", {})
        if event.get("type") in (
            "session.completed",
            "session.partially_completed",
            "session.failed",
        ):
            return dict(event)


async def test_a_session_runs_to_completion_on_a_shell_worker(
    gateway: str, worker: tuple[Path, str]
) -> None:
    workspace, agent_id = worker
    prompt = "1. write the parser\n2. write the tests for it\n3. document the parser"
    body = {
        "title": "IND-77 parser",
        "initial_prompt": prompt,
        "agent_config": {"max_depth": "1"},
        "tags": ["e2e-run"],
    }
    async with httpx.AsyncClient(base_url=gateway + "/api/v1", timeout=15) as http:
        session = (await http.post("/sessions", json=body)).json()
        ws_url = gateway.replace("http://", "ws://") + f"/ws/sessions/{session['id']}"
        async with websockets.connect(ws_url) as ws:
            await asyncio.wait_for(ws.recv(), 10)
            started = await http.post(f"/sessions/{session['id']}/start")
            assert started.status_code == 200, started.text
            end = await _session_end(ws)
        assert end["type"] == "session.completed", end
        final = (await http.get(f"/sessions/{session['id']}")).json()
        tasks = (await http.get("/tasks", params={"session_id": session["id"]})).json()["tasks"]
        graph = (await http.get(f"/sessions/{session['id']}/graph")).json()
        leaves = [t for t in tasks if t["parent_id"]]

        # The agent service records each run from the task events, so the last one may land
        # just after the session ended. (The shared test stack may also hand this worker READY
        # leftovers of other tests' sessions: at least.)
        async def recorded() -> bool:
            agent = (await http.get(f"/agents/{agent_id}")).json()
            return bool(agent["performance"]["tasks_completed"] >= len(leaves))

        await wait_until(recorded, within=10, what="the track record of every run")
        agent = (await http.get(f"/agents/{agent_id}")).json()

    assert final["status"] == "completed"
    assert final["metrics"]["tasks_completed"] == len(tasks) >= 4  # the root and its 3 steps
    assert {t["status"] for t in tasks} == {"completed"}
    # Each step ran once, on the worker, in dependency order.
    steps = (workspace / "steps.txt").read_text().splitlines()
    assert sorted(steps) == sorted(t["title"] for t in leaves) and len(steps) == len(leaves)
    order = graph["topological_order"]
    by_id = {t["id"]: t["title"] for t in leaves}
    assert steps == [by_id[i] for i in order if i in by_id]
    assert all(t["result"]["exit_code"] == 0 for t in leaves)
    # Every run reached the agent's track record.
    assert agent["performance"]["tasks_completed"] >= len(leaves)
    assert agent["performance"]["success_rate"] == 1.0


async def test_stopping_a_session_kills_its_running_work_and_cancels_the_rest(
    gateway: str, worker: tuple[Path, str]
) -> None:
    workspace, _ = worker
    body = {
        "title": "IND-78 long job",
        "initial_prompt": "1. a long step\n2. a step that must never run",
        "agent_config": {
            "max_depth": "1",
            "command": "touch started.txt; sleep 60; touch done.txt",
        },
    }
    async with httpx.AsyncClient(base_url=gateway + "/api/v1", timeout=15) as http:
        session = (await http.post("/sessions", json=body)).json()
        await http.post(f"/sessions/{session['id']}/start")
        for _ in range(200):
            if (workspace / "started.txt").exists():
                break
            await asyncio.sleep(0.1)
        assert (workspace / "started.txt").exists(), "the first step never started"
        assert _runs_in(workspace), "the running step's processes should be visible"
        stopped = await http.post(f"/sessions/{session['id']}/stop", json={"reason": "enough"})
        assert stopped.json()["status"] == "stopped"
        for _ in range(200):
            tasks = (await http.get("/tasks", params={"session_id": session["id"]})).json()["tasks"]
            if {t["status"] for t in tasks} == {"cancelled"}:
                break
            await asyncio.sleep(0.1)
        assert {t["status"] for t in tasks} == {"cancelled"}, [t["status"] for t in tasks]
        final = (await http.get(f"/sessions/{session['id']}")).json()
    assert final["status"] == "stopped"
    # The run was killed, not left to finish: no process of it is left in the workspace.
    for _ in range(100):
        if not _runs_in(workspace):
            break
        await asyncio.sleep(0.1)
    assert _runs_in(workspace) == []
    assert not (workspace / "done.txt").exists()


def _runs_in(workspace: Path) -> list[int]:
    found = []
    for proc in psutil.process_iter(["pid", "cwd", "status"]):
        if proc.info["cwd"] == str(workspace) and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc.info["pid"])
    return found


# Each step copies the context it was given and shares a note under its own id.
_SHARING = (
    'cp "$ORCH_CONTEXT_FILE" "seen-$ORCH_TASK_ID.json";'
    ' printf \'{"context": {"notes.%s": "%s"}, "summary": "noted %s"}\''
    ' "$ORCH_TASK_ID" "$ORCH_TASK_TITLE" "$ORCH_TASK_TITLE" > "$ORCH_RESULT_FILE"'
)


async def test_steps_share_what_they_learnt_through_the_session_context(
    settings: Settings, gateway: str
) -> None:
    body = {
        "title": "IND-78 shared notes",
        "initial_prompt": "1. write the parser\n2. document the parser",
        "agent_config": {"max_depth": "1"},
    }
    async with (
        _shell_worker(settings, _SHARING, "CTX") as (workspace, config),
        httpx.AsyncClient(base_url=gateway + "/api/v1", timeout=15) as http,
    ):
        session = (await http.post("/sessions", json=body)).json()
        ws_url = gateway.replace("http://", "ws://") + f"/ws/sessions/{session['id']}"
        async with websockets.connect(ws_url) as ws:
            await asyncio.wait_for(ws.recv(), 10)
            assert (await http.post(f"/sessions/{session['id']}/start")).status_code == 200
            end = await _session_end(ws)
        assert end["type"] == "session.completed", end
        tasks = (await http.get("/tasks", params={"session_id": session["id"]})).json()
        graph = (await http.get(f"/sessions/{session['id']}/graph")).json()
        listed = await http.get("/contexts", params={"scope": "session", "owner_id": session["id"]})
        (summary,) = listed.json()["contexts"]
        shared = (await http.get(f"/contexts/{summary['id']}")).json()
        history = (await http.get(f"/contexts/{summary['id']}/history")).json()
        leaves = {t["id"]: t for t in tasks["tasks"] if t["parent_id"]}
        first, second = [i for i in graph["topological_order"] if i in leaves]
        seen_by_second = json.loads((workspace / f"seen-{second}.json").read_text())
        seen_by_first = json.loads((workspace / f"seen-{first}.json").read_text())
    # The first step started with nothing shared; the second saw what the first shared, and
    # the entry the worker keeps for every finished task.
    assert seen_by_first.get("notes", {}).get(first) is None
    assert seen_by_second["notes"][first] == leaves[first]["title"]
    assert seen_by_second["tasks"][first] == {
        "title": leaves[first]["title"],
        "summary": f"noted {leaves[first]['title']}",
    }
    data = shared["data"]
    assert data["notes"] == {i: leaves[i]["title"] for i in (first, second)}
    assert set(data["tasks"]) == {first, second}
    # Created empty by the worker (version 1), then one version per step.
    changes = history["changes"]
    assert {c["changed_by"] for c in changes} == {config.name}
    assert shared["version"] == 3 and {c["version"] for c in changes} == {2, 3}
