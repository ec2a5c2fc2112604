"""The shell executor against real processes: exit codes, output tail, env, timeout, cancel."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from google.protobuf import struct_pb2

from orchestrator.api.task.v1 import task_pb2
from orchestrator.worker.executors import ShellExecutor
from orchestrator.worker.executors.base import Job
from orchestrator.worker.executors.shell import TAIL_BYTES, TaskInputError

pytestmark = pytest.mark.timeout(20)


def _task(command: str | None = None, **extra: float) -> task_pb2.Task:
    fields = struct_pb2.Struct()
    if command is not None:
        fields.update({"command": command})
    fields.update(extra)
    return task_pb2.Task(
        id="t-1", session_id="s-1", title="Title", description="Does things", input=fields
    )


async def test_success_runs_in_the_workspace(tmp_path: Path) -> None:
    result = await ShellExecutor().run(Job(_task("echo done > out.txt"), tmp_path, asyncio.Event()))
    assert result.succeeded and result.exit_code == 0
    assert (tmp_path / "out.txt").read_text() == "done\n"
    assert result.duration_seconds >= 0


async def test_nonzero_exit_fails_with_last_line(tmp_path: Path) -> None:
    result = await ShellExecutor().run(
        Job(_task("echo first; echo broken >&2; exit 3"), tmp_path, asyncio.Event())
    )
    assert not result.succeeded and result.exit_code == 3
    assert result.error_message() == "exit code 3: broken"


async def test_configured_command_when_the_task_has_none(tmp_path: Path) -> None:
    result = await ShellExecutor(command="echo fallback").run(
        Job(_task(), tmp_path, asyncio.Event())
    )
    assert result.output_tail == "fallback\n"
    with pytest.raises(TaskInputError):
        await ShellExecutor().run(Job(_task(), tmp_path, asyncio.Event()))


async def test_env_carries_the_task(tmp_path: Path) -> None:
    command = 'echo "$ORCH_TASK_ID|$ORCH_SESSION_ID|$ORCH_TASK_TITLE|$ORCH_TASK_DESCRIPTION"'
    result = await ShellExecutor().run(Job(_task(command), tmp_path, asyncio.Event()))
    assert result.output_tail == "t-1|s-1|Title|Does things\n"


async def test_output_keeps_only_the_tail(tmp_path: Path) -> None:
    command = "head -c 100000 /dev/zero | tr '\\0' a; echo; echo END"
    result = await ShellExecutor().run(Job(_task(command), tmp_path, asyncio.Event()))
    assert len(result.output_tail) <= TAIL_BYTES
    assert result.output_tail.endswith("a\nEND\n")


async def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    # A grandchild that writes its pid: it must die with the shell, not outlive the task.
    command = "sleep 30 & echo $! > child.pid; wait"
    started = time.monotonic()
    result = await ShellExecutor(timeout_seconds=0.5).run(
        Job(_task(command), tmp_path, asyncio.Event())
    )
    assert result.timed_out and not result.succeeded
    assert time.monotonic() - started < 5
    assert result.error_message().startswith("timed out after")
    assert not _alive(int((tmp_path / "child.pid").read_text()))


async def test_per_task_timeout_overrides_the_default(tmp_path: Path) -> None:
    task = _task("sleep 30", timeout_seconds=0.3)
    result = await ShellExecutor(timeout_seconds=60).run(Job(task, tmp_path, asyncio.Event()))
    assert result.timed_out


async def test_cancel_kills_the_run(tmp_path: Path) -> None:
    cancel = asyncio.Event()
    running = asyncio.create_task(ShellExecutor().run(Job(_task("sleep 30"), tmp_path, cancel)))
    await asyncio.sleep(0.2)
    cancel.set()
    result = await asyncio.wait_for(running, 5)
    assert result.cancelled and not result.succeeded


def _alive(pid: int) -> bool:
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        # A killed orphan may linger as a zombie until PID 1 reaps it; that is not alive.
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(")")[-1].split()[0] == "Z":
                    return False
        except FileNotFoundError:
            return False
        time.sleep(0.05)
    return True
