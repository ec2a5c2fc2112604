"""End to end through the gateway, on a real shell worker: a session whose steps report their
usage through $ORCH_RESULT_FILE pauses once its token budget is spent and starts no more steps;
a failed session, once its cause is fixed, is retried and completes without running again the
step that had completed."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.api.common.v1 import taxonomy_pb2
from orchestrator.common.settings import Settings
from orchestrator.worker.config import WorkerConfig
from orchestrator.worker.executors.shell import ShellExecutor
from orchestrator.worker.worker import Worker
from tests.support.mesh import wait_until

pytestmark = pytest.mark.timeout(120)

# Steps about configuration need CONFIGURATION; only this file's worker holds it, so it takes
# no task of another test's session and no other worker takes these.
CAPABILITY = "configuration"


@pytest.fixture
async def worker(settings: Settings, gateway: str) -> AsyncIterator[Path]:
    """A shell worker holding only CONFIGURATION; yields a folder for the steps' records."""
    name = f"AGENT-E2E-CFG-{uuid.uuid4().hex[:6].upper()}"
    workspace = Path(tempfile.mkdtemp(prefix="orch-ws-"))
    records = Path(tempfile.mkdtemp(prefix="orch-records-"))
    config = WorkerConfig(
        name=name,
        workspace=workspace,
        capabilities=(taxonomy_pb2.Capability.Value(f"CAPABILITY_{CAPABILITY.upper()}"),),
        max_tasks=1,
    )
    running = Worker(settings, config, ShellExecutor("false", 30))
    task = asyncio.create_task(running.run())
    try:
        yield records
    finally:
        await running.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
        shutil.rmtree(workspace, ignore_errors=True)
        shutil.rmtree(records, ignore_errors=True)


def _runs(records: Path) -> list[str]:
    path = records / "runs.txt"
    return path.read_text().splitlines() if path.exists() else []


async def _create(
    http: httpx.AsyncClient,
    prompt: str,
    command: str,
    config: dict[str, str] | None = None,
    **extra: Any,
) -> str:
    agent_config = {"max_depth": "1", "capabilities": CAPABILITY, "command": command}
    body = {
        "title": f"IND-{uuid.uuid4().hex[:4]} tune the knobs",
        "initial_prompt": prompt,
        "agent_config": {**agent_config, **(config or {})},
        **extra,
    }
    created = await http.post("/sessions", json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _status_becomes(http: httpx.AsyncClient, sid: str, status: str) -> dict[str, Any]:
    async def reached() -> bool:
        return bool((await http.get(f"/sessions/{sid}")).json()["status"] == status)

    await wait_until(reached, within=60, what=f"session {sid} to be {status}")
    return dict((await http.get(f"/sessions/{sid}")).json())


async def _steps(http: httpx.AsyncClient, sid: str) -> dict[str, dict[str, Any]]:
    tasks = (await http.get("/tasks", params={"session_id": sid})).json()["tasks"]
    return {t["title"]: t for t in tasks if t["parent_id"]}


async def test_a_spent_token_budget_pauses_the_session_and_only_a_raised_one_resumes_it(
    gateway: str, worker: Path
) -> None:
    records = worker
    usage = '{"usage": {"input_tokens": 400, "output_tokens": 200}, "summary": "configured"}'
    command = (
        f'echo "$ORCH_TASK_TITLE" >> {records}/runs.txt; sleep 0.5; '
        f"echo '{usage}' > \"$ORCH_RESULT_FILE\""
    )
    prompt = "1. configure alpha\n2. configure beta\n3. configure gamma\n4. configure delta"
    async with httpx.AsyncClient(base_url=gateway + "/api/v1", timeout=15) as http:
        sid = await _create(http, prompt, command, limits={"token_budget": 1000})
        assert (await http.post(f"/sessions/{sid}/start")).status_code == 200
        paused = await _status_becomes(http, sid, "paused")
        assert paused["status_reason"] == "token budget exhausted: 1,200 of 1,000 tokens"
        # No step is handed out once the budget is spent, however long we wait.
        await asyncio.sleep(3)
        steps = await _steps(http, sid)
        final = (await http.get(f"/sessions/{sid}")).json()
        runs = _runs(records)
        # Over REST: resuming without raising the budget, or raising it too little, is 409; a
        # negative budget is 422; neither changes the session.
        for body, code in (
            (None, 409),
            ({"token_budget": 1200}, 409),
            ({"token_budget": -5}, 422),
            ({"cost_budget_usd": -0.5}, 422),
        ):
            refused = await http.post(f"/sessions/{sid}/resume", json=body)
            assert refused.status_code == code, refused.text
        assert (await http.get(f"/sessions/{sid}")).json()["version"] == final["version"]
        resumed = await http.post(f"/sessions/{sid}/resume", json={"token_budget": 100_000})
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["limits"]["token_budget"] == 100_000
        done = await _status_becomes(http, sid, "completed")

    assert runs == ["configure alpha", "configure beta"]
    assert "configure delta" not in runs, "no step starts once the budget is spent"
    assert steps["configure delta"]["status"] in ("ready", "pending")
    assert steps["configure alpha"]["result"]["summary"] == "configured"
    assert final["status"] == "paused"
    spent = final["metrics"]["usage"]
    assert (spent["input_tokens"], spent["output_tokens"]) == (400 * len(runs), 200 * len(runs))
    # Raised, the rest ran, each step once.
    assert _runs(records) == [f"configure {n}" for n in ("alpha", "beta", "gamma", "delta")]
    assert done["metrics"]["usage"]["input_tokens"] == 1600


async def test_a_failed_session_is_retried_after_the_fix_and_completes_without_rerunning(
    gateway: str, worker: Path
) -> None:
    records = worker
    # Beta waits for the test's go-ahead, then fails until the fix is in place.
    command = (
        f'echo "$ORCH_TASK_TITLE" >> {records}/runs.txt; case "$ORCH_TASK_TITLE" in *beta*) '
        f"while [ ! -e {records}/go ]; do sleep 0.1; done; test -e {records}/fixed || exit 1;; esac"
    )
    prompt = "1. configure alpha\n2. configure beta\n3. configure gamma"
    async with httpx.AsyncClient(base_url=gateway + "/api/v1", timeout=15) as http:
        sid = await _create(http, prompt, command, config={"max_attempts": "1"})
        assert (await http.post(f"/sessions/{sid}/start")).status_code == 200

        async def alpha_done() -> bool:
            alpha = (await _steps(http, sid)).get("configure alpha")
            return alpha is not None and alpha["status"] == "completed"

        await wait_until(alpha_done, within=30, what="the first step to complete")
        checkpoint = await http.post(f"/sessions/{sid}/checkpoints", json={"data": {"at": 1}})
        assert checkpoint.status_code in (200, 201), checkpoint.text
        # Degraded while beta runs: a degraded session whose work fails ends FAILED, which a
        # retry may resume (a running one would end partially completed, which is final).
        degraded = await http.post(f"/sessions/{sid}/degrade", json={"reason": "beta is flaky"})
        assert degraded.status_code == 200, degraded.text
        (records / "go").touch()
        failed = await _status_becomes(http, sid, "failed")
        assert failed["metrics"]["tasks_completed"] == 1
        before = await _steps(http, sid)
        assert before["configure beta"]["status"] == "failed"
        assert before["configure gamma"]["status"] == "skipped"

        (records / "fixed").touch()
        retried = await http.post(f"/sessions/{sid}/retry")
        assert retried.status_code == 200, retried.text
        assert retried.json()["resume_from"]["sequence"] == 1
        assert retried.json()["resume_from"]["data"] == {"at": 1}
        assert (await http.post(f"/sessions/{sid}/start")).status_code == 200
        done = await _status_becomes(http, sid, "completed")
        after = await _steps(http, sid)

    runs = _runs(records)
    assert runs.count("configure alpha") == 1, "the completed step never ran again"
    assert runs.count("configure beta") == 2 and runs.count("configure gamma") == 1
    assert {t["status"] for t in after.values()} == {"completed"}
    assert done["metrics"]["retry_count"] == 1
