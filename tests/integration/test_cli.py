"""`orch session` and `orch task` as a user runs them: a subprocess against the real services."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import grpc
import pytest

from orchestrator.api.session.v1 import session_pb2 as spb
from orchestrator.api.session.v1 import session_pb2_grpc
from orchestrator.api.task.v1 import task_pb2 as tpb
from orchestrator.api.task.v1 import task_pb2_grpc
from orchestrator.common.stack import pick_free_port

pytestmark = pytest.mark.timeout(20)

# main.py mounts the same two apps; this keeps the test independent of it.
CLI = """
import typer
from orchestrator.cli import session, task
app = typer.Typer()
app.add_typer(session.app, name="session")
app.add_typer(task.app, name="task")
app()
"""


def _env(tmp_path: Path, session_addr: str, task_addr: str = "") -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ORCH_SESSION_ADDR=session_addr,
        ORCH_TASK_ADDR=task_addr or f"127.0.0.1:{pick_free_port()}",
        ORCH_DATA_DIR=str(tmp_path),
        PYTHONUNBUFFERED="1",
    )
    return env


async def _orch(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLI,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=15)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _ok(env: dict[str, str], *args: str) -> str:
    code, out, err = await _orch(env, *args)
    assert code == 0, err
    return out


def _tag() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


async def test_session_lifecycle(tmp_path: Path, session_service: str) -> None:
    env = _env(tmp_path, session_service)
    tag = _tag()
    created = await _ok(
        env,
        "session", "create", "--title", "IND-1 CLI session", "--prompt", "Do the thing.",
        "--priority", "high", "--model", "local/scripted", "--tag", tag,
        "--max-depth", "2", "--command", "true",
    )  # fmt: skip
    session_id = created.split()[0]
    uuid.UUID(session_id)
    assert "pending" in created

    listed = await _ok(env, "session", "list", "--tag", tag)
    assert session_id in listed and "IND-1 CLI session" in listed

    assert "running" in await _ok(env, "session", "start", session_id)
    shown = await _ok(env, "session", "show", session_id)
    assert "running" in shown and "max_depth=2" in shown and "command=true" in shown
    assert "paused" in await _ok(env, "session", "pause", session_id, "--reason", "lunch")
    assert "running" in await _ok(env, "session", "resume", session_id)
    assert "stopped" in await _ok(env, "session", "stop", session_id, "--reason", "done")
    running = await _ok(env, "session", "list", "--tag", tag, "--status", "running")
    assert session_id not in running


async def test_create_sets_limits_policy_workspace_and_config_and_can_start(
    tmp_path: Path, session_service: str
) -> None:
    env = _env(tmp_path, session_service)
    created = await _ok(
        env,
        "session", "create", "--title", "IND-2 limits", "--prompt", "Do it.",
        "--description", "with every knob", "--config", "max_attempts=2",
        "--config", "max_depth=5", "--max-depth", "0", "--capabilities", "testing,debugging",
        "--workspace", str(tmp_path / "repo"), "--permissions", "escalate",
        "--max-duration", "600", "--max-parallel", "3", "--token-budget", "5000",
        "--cost-budget", "1.5", "--max-retries", "0", "--start",
    )  # fmt: skip
    session_id, status = created.split()[:2]
    assert status == "running"
    async with grpc.aio.insecure_channel(session_service) as channel:
        stub = session_pb2_grpc.SessionServiceStub(channel)
        got = await stub.GetSession(spb.GetSessionRequest(session_id=session_id))
    s = got.session
    # A named option wins over a --config pair of the same key.
    assert dict(s.agent_config) == {
        "max_attempts": "2",
        "max_depth": "0",
        "capabilities": "testing,debugging",
    }
    assert s.description == "with every knob" and s.workspace == str(tmp_path / "repo")
    assert s.permission_policy == spb.PERMISSION_POLICY_ESCALATE
    assert s.max_duration_seconds == 600
    assert (s.limits.max_parallel_tasks, s.limits.token_budget) == (3, 5000)
    assert s.limits.cost_budget_usd == 1.5
    assert s.limits.HasField("max_retries") and s.limits.max_retries == 0

    shown = await _ok(env, "session", "show", session_id)
    assert "escalate" in shown and str(tmp_path / "repo") in shown
    assert "max duration 600 s, 3 tasks at once, 5,000 tokens, $1.50, 0/0 retries" in shown
    assert "0 tokens (in 0, out 0), $0.0000" in shown


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--config", "no-equals-sign"], "--config takes KEY=VALUE; got 'no-equals-sign'"),
        (["--config", "=value"], "--config takes KEY=VALUE"),
        (["--permissions", "sometimes"], "unknown policy 'sometimes'"),
        (["--max-parallel", "-1"], "max_parallel_tasks"),
        (["--max-duration", "5"], "max_duration_seconds"),
    ],
)
async def test_create_refuses_bad_options_in_one_line(
    tmp_path: Path, session_service: str, args: list[str], says: str
) -> None:
    env = _env(tmp_path, session_service)
    tag = _tag()
    code, out, err = await _orch(
        env, "session", "create", "--title", "T", "--prompt", "P", "--tag", tag, *args
    )
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("orch: ") and says in err
    async with grpc.aio.insecure_channel(session_service) as channel:
        stub = session_pb2_grpc.SessionServiceStub(channel)
        listed = await stub.ListSessions(spb.ListSessionsRequest(tags=[tag]))
    assert list(listed.sessions) == []  # nothing was created


async def test_invalid_title_is_one_line_naming_the_field(
    tmp_path: Path, session_service: str
) -> None:
    env = _env(tmp_path, session_service)
    code, out, err = await _orch(env, "session", "create", "--title", "", "--prompt", "P")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("orch: ") and "title" in err


async def test_unreachable_mesh_says_so(tmp_path: Path) -> None:
    address = f"127.0.0.1:{pick_free_port()}"
    code, _, err = await _orch(_env(tmp_path, address), "session", "list")
    assert code == 1
    assert err.strip() == f"orch: no mesh reachable at {address}: start one with `orch up`"


async def test_approve_and_reject_in_the_wrong_state(tmp_path: Path, task_service: str) -> None:
    env = _env(tmp_path, f"127.0.0.1:{pick_free_port()}", task_service)
    async with grpc.aio.insecure_channel(task_service) as channel:
        stub = task_pb2_grpc.TaskServiceStub(channel)
        request = tpb.CreateTaskRequest(
            session_id=str(uuid.uuid4()), title="Not reviewed yet", actor="tests"
        )
        task = (await stub.CreateTask(request)).task
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ApproveTask(tpb.ApproveTaskRequest(task_id=task.id, actor="tests"))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    code, _, err = await _orch(env, "task", "approve", task.id, "--comment", "fine")
    assert code == 1
    assert err.strip() == f"orch: {refused.value.details()}"
    code, _, err = await _orch(env, "task", "reject", task.id, "--comment", "redo")
    assert code == 1 and err.startswith("orch: ") and len(err.strip().splitlines()) == 1

    listed = await _ok(env, "task", "list", "--session", task.session_id)
    assert task.id in listed and "Not reviewed yet" in listed


async def test_watch_prints_changes_and_returns_when_stopped(
    tmp_path: Path, session_service: str
) -> None:
    env = _env(tmp_path, session_service)
    async with grpc.aio.insecure_channel(session_service) as channel:
        stub = session_pb2_grpc.SessionServiceStub(channel)
        request = spb.CreateSessionRequest(
            title="IND-2 watched", initial_prompt="Watch me.", tags=[_tag()]
        )
        session = (await stub.CreateSession(request)).session
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLI, "session", "watch", session.id,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        try:
            first = await asyncio.wait_for(proc.stdout.readline(), timeout=10)
            assert "pending" in first.decode()
            await stub.StartSession(spb.StartSessionRequest(session_id=session.id, actor="t"))
            started = await asyncio.wait_for(proc.stdout.readline(), timeout=5)
            assert "started" in started.decode() and "running" in started.decode()
            await stub.StopSession(spb.StopSessionRequest(session_id=session.id, actor="t"))
            rest, err = await asyncio.wait_for(proc.communicate(), timeout=5)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert "stopped" in rest.decode().splitlines()[-1]
