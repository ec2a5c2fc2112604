"""End to end with a real `opencode serve`: sessions started over HTTP run on a worker whose
executor drives OpenCode, which really writes, edits and runs things. Only the LLM is a
stand-in, scripted per session title.

The worker holds a capability no other test's worker has, and every session here asks for it
with max_depth 0, so the stack shared with other tests never hands it foreign work (nor theirs
ours).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from orchestrator.api.agent.v1 import agent_pb2
from orchestrator.api.common.v1 import taxonomy_pb2
from orchestrator.common.settings import Settings
from orchestrator.worker.config import WorkerConfig
from orchestrator.worker.executors.opencode import OpenCodeClient, OpenCodeExecutor
from orchestrator.worker.executors.opencode.server import OpenCodeServer
from orchestrator.worker.worker import Worker
from tests.support.llm_standin import LLMStandIn, Reply, bash, edit, running_standin, write
from tests.support.mesh import wait_until
from tests.support.opencode import MODEL_ID, running_opencode

pytestmark = pytest.mark.timeout(90)

CAPABILITY = "architecture_planning"
ENDED = {"completed", "partially_completed", "failed", "stopped", "cancelled", "timeout"}


@dataclass
class Rig:
    llm: LLMStandIn
    opencode: OpenCodeServer
    workspace: Path
    http: httpx.AsyncClient


@pytest.fixture(scope="module")
async def llm() -> AsyncIterator[LLMStandIn]:
    async with running_standin() as standin:
        yield standin


@pytest.fixture(scope="module")
async def opencode(llm: LLMStandIn) -> AsyncIterator[OpenCodeServer]:
    async with running_opencode(llm.base_url) as server:
        yield server


@pytest.fixture(scope="module")
async def rig(
    settings: Settings, gateway: str, llm: LLMStandIn, opencode: OpenCodeServer
) -> AsyncIterator[Rig]:
    workspace = Path(tempfile.mkdtemp(prefix="orch-oc-ws-"))
    config = WorkerConfig(
        name=f"AGENT-OC-{uuid.uuid4().hex[:6].upper()}",
        workspace=workspace,
        capabilities=(taxonomy_pb2.Capability.Value(f"CAPABILITY_{CAPABILITY.upper()}"),),
        executor_kind=agent_pb2.EXECUTOR_KIND_OPENCODE,
        executor_endpoint=opencode.url,
        max_tasks=3,
        metadata={"executor": "opencode"},
    )
    executor = OpenCodeExecutor(OpenCodeClient(opencode.url), model=MODEL_ID, timeout_seconds=60)
    worker = Worker(settings, config, executor)
    running = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.ready.wait(), 20)
    try:
        async with httpx.AsyncClient(base_url=gateway + "/api/v1", timeout=15) as http:
            yield Rig(llm, opencode, workspace, http)
    finally:
        await worker.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(running, 30)
        await executor.aclose()
        shutil.rmtree(workspace, ignore_errors=True)


async def _create(rig: Rig, title: str, policy: str = "allow", **extra: Any) -> dict[str, Any]:
    body = {
        "title": title,
        "initial_prompt": f"Goal of {title}: keep the calculator correct.",
        "agent_config": {"capabilities": CAPABILITY, "max_depth": "0"},
        "permission_policy": policy,
        "tags": ["e2e-opencode"],
        **extra,
    }
    created = await rig.http.post("/sessions", json=body)
    assert created.status_code == 201, created.text
    session: dict[str, Any] = created.json()
    return session


async def _start(rig: Rig, session: dict[str, Any]) -> None:
    started = await rig.http.post(f"/sessions/{session['id']}/start")
    assert started.status_code == 200, started.text


async def _ended(rig: Rig, session_id: str, within: float = 45) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def ended() -> bool:
        found.update((await rig.http.get(f"/sessions/{session_id}")).json())
        return found.get("status") in ENDED

    try:
        await wait_until(ended, within=within, what=f"session {session_id} to end")
    finally:
        if found.get("status") not in ENDED:  # leave nothing running for other tests
            await rig.http.post(f"/sessions/{session_id}/stop", json={"reason": "test over"})
    return found


async def _only_task(rig: Rig, session_id: str) -> dict[str, Any]:
    tasks = (await rig.http.get("/tasks", params={"session_id": session_id})).json()["tasks"]
    assert len(tasks) == 1, tasks  # max_depth 0: the root task runs itself
    task: dict[str, Any] = tasks[0]
    return task


async def test_a_session_makes_opencode_write_and_edit_files(rig: Rig) -> None:
    title = f"OC-CALC-{uuid.uuid4().hex[:6]}"
    rig.llm.script(
        title,
        write("calc.py", "def add(a, b):\n    return a - b\n"),
        edit("calc.py", "return a - b", "return a + b"),
        Reply(text="Fixed add in calc.py."),
    )
    session = await _create(rig, title)
    context = {"scope": "session", "owner_id": session["id"], "data": {"style": "tabs-never"}}
    assert (await rig.http.post("/contexts", json=context)).status_code == 201
    await _start(rig, session)
    final = await _ended(rig, session["id"])
    task = await _only_task(rig, session["id"])

    assert final["status"] == "completed", final
    assert (rig.workspace / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    # The prompt carried the task, the session's goal and its shared context.
    prompt = rig.llm.exchanges_for(title)[0].prompt
    assert f"Goal of {title}" in prompt and "tabs-never" in prompt
    changes = task["changes"]
    assert changes["changed_files"] == ["calc.py"]
    assert "+    return a + b" in changes["diff"] and "a - b" not in changes["diff"]
    # Three LLM calls (write, edit, closing text) of 100 input and 20 output tokens each.
    assert task["usage"]["input_tokens"] == 300 and task["usage"]["output_tokens"] == 60
    assert task["usage"]["cost_usd"] > 0
    result = task["result"]
    assert result["exit_code"] == 0 and result["final_text"] == "Fixed add in calc.py."
    assert result["opencode_session_id"].startswith("ses_") and result["tool_calls"] == 2
    usage = final["metrics"]["usage"]
    assert usage["input_tokens"] == 300 and usage["output_tokens"] == 60
    checkpoints = (await rig.http.get(f"/sessions/{session['id']}/checkpoints")).json()
    labels = [c["data"].get("label") for c in checkpoints["checkpoints"]]
    assert "tool:write" in labels and "tool:edit" in labels
    assert all(c["data"]["task_id"] == task["id"] for c in checkpoints["checkpoints"])


async def test_a_session_on_a_repository_gets_a_worktree_and_branch_per_task(rig: Rig) -> None:
    repo = Path(tempfile.mkdtemp(prefix="orch-oc-repo-"))
    try:
        base = _git_repository(repo)
        title = f"OC-GIT-{uuid.uuid4().hex[:6]}"
        rig.llm.script(
            title,
            write("greet.py", "def greet():\n    return 'hi'\n"),
            edit("README.md", "A repository.", "A repository that greets."),
        )
        session = await _create(rig, title, workspace=str(repo))
        await _start(rig, session)
        final = await _ended(rig, session["id"])
        task = await _only_task(rig, session["id"])
        assert final["status"] == "completed", final

        changes = task["changes"]
        short = task["id"].replace("-", "")[:8]
        assert changes["branch"] == f"orch/{short}" and changes["base_commit"] == base
        assert sorted(changes["changed_files"]) == ["README.md", "greet.py"]
        diff = changes["diff"]
        assert "+def greet():" in diff and "+A repository that greets." in diff
        head = changes["head_commit"]
        assert _git(repo, "rev-parse", f"orch/{short}") == head != base
        assert _git(repo, "show", f"{head}:greet.py") == "def greet():\n    return 'hi'"
        # The work lives on in its branch; the worktree folder it ran in was removed.
        assert task["result"]["worktree"] == str(rig.workspace / "worktrees" / short)
        assert task["result"]["worktree_kept"] is False
        assert not (rig.workspace / "worktrees" / short).exists()
        # The session's integration branch moved on to the task's work; the checkout did not.
        assert task["result"]["integrated"] is True
        integration = task["result"]["integration_branch"]
        assert _git(repo, "rev-parse", integration) == head
        assert not (repo / "greet.py").exists()
    finally:
        shutil.rmtree(repo, ignore_errors=True)


async def test_permission_requests_are_answered_by_the_session_policy(rig: Rig) -> None:
    tag = uuid.uuid4().hex[:6]
    titles = {policy: f"OC-PERM-{policy}-{tag}" for policy in ("allow", "deny", "escalate")}
    for policy, title in titles.items():
        rig.llm.script(title, bash(f"echo {policy} > perm-{policy}-{tag}.txt"))
    sessions = {p: await _create(rig, t, policy=p) for p, t in titles.items()}
    for session in sessions.values():
        await _start(rig, session)
    finals = {p: await _ended(rig, s["id"]) for p, s in sessions.items()}
    tasks = {p: await _only_task(rig, s["id"]) for p, s in sessions.items()}

    assert finals["allow"]["status"] == "completed", finals["allow"]
    assert (rig.workspace / f"perm-allow-{tag}.txt").read_text() == "allow\n"
    assert tasks["allow"]["changes"]["changed_files"] == [f"perm-allow-{tag}.txt"]

    assert finals["deny"]["status"] == "failed"
    assert tasks["deny"]["status"] == "failed" and tasks["deny"]["attempt_count"] == 1
    assert "denied by the session's permission policy: bash" in tasks["deny"]["error"]
    assert not (rig.workspace / f"perm-deny-{tag}.txt").exists()

    assert finals["escalate"]["status"] == "failed"
    assert "needs a human: bash" in tasks["escalate"]["error"]
    assert not (rig.workspace / f"perm-escalate-{tag}.txt").exists()


async def test_stopping_a_session_aborts_its_opencode_session(rig: Rig) -> None:
    title = f"OC-LONG-{uuid.uuid4().hex[:6]}"
    marker = f"late-{uuid.uuid4().hex[:6]}.txt"
    rig.llm.script(title, bash(f"sleep 47 && touch {marker}"), Reply(text="never reached"))
    session = await _create(rig, title)
    await _start(rig, session)
    await wait_until(lambda: _sleeping(), within=30, what="the long command to run")
    stopped = await rig.http.post(f"/sessions/{session['id']}/stop", json={"reason": "enough"})
    assert stopped.json()["status"] == "stopped"

    async with httpx.AsyncClient(base_url=rig.opencode.url, timeout=10) as oc:
        params = {"directory": str(rig.workspace.resolve())}
        listed = (await oc.get("/session", params=params)).json()
        ours = [s for s in listed if s["title"].startswith(title)]
        assert len(ours) == 1, listed

        async def aborted() -> bool:
            busy = (await oc.get("/session/status", params=params)).json()
            return ours[0]["id"] not in busy and not await _sleeping()

        await wait_until(aborted, within=15, what="the OpenCode session to be aborted")
        messages = (await oc.get(f"/session/{ours[0]['id']}/message", params=params)).json()
    errors = [m["info"].get("error", {}).get("name") for m in messages]
    assert "MessageAbortedError" in errors
    assert not (rig.workspace / marker).exists()
    task = await _only_task(rig, session["id"])
    assert task["status"] == "cancelled"


async def _sleeping() -> bool:
    def scan() -> bool:
        for proc in psutil.process_iter(["cmdline"]):
            if "sleep 47" in " ".join(proc.info["cmdline"] or []):
                return True
        return False

    return await asyncio.to_thread(scan)


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _git_repository(repo: Path) -> str:
    (repo / "README.md").write_text("A repository.\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "README.md")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "start")
    return _git(repo, "rev-parse", "HEAD")
