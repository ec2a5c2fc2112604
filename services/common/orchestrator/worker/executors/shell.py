"""Runs a task as a shell command in the workspace, in its own process group.

The group matters: `sh -c "make test"` forks children, and killing only the shell would leave
them running (and holding the output pipe open) after a timeout or cancel.

The command reads its session's shared context from `$ORCH_CONTEXT_FILE` (the default
context's data as JSON, `{}` when there is none) and may write its usage, result fields and
values to share into `$ORCH_RESULT_FILE` (see result_file).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import tempfile
import time
from collections import deque
from pathlib import Path

from orchestrator.api.task.v1 import task_pb2
from orchestrator.common.stack import setpriv_prefix
from orchestrator.worker.executors.base import ExecutionResult, Job
from orchestrator.worker.executors.result_file import ENV_NAME as RESULT_FILE_ENV
from orchestrator.worker.executors.result_file import read_result_file, split_context
from orchestrator.worker.workspace import GitWorktree, WorkspaceError

DEFAULT_TIMEOUT_SECONDS = 600.0
CONTEXT_FILE_ENV = "ORCH_CONTEXT_FILE"
TAIL_BYTES = 4096
# Between SIGTERM and SIGKILL: lets well-behaved tools clean up, but never blocks for long.
KILL_GRACE_SECONDS = 2.0
# How long to keep reading output after the shell exited (stragglers are killed first).
DRAIN_SECONDS = 1.0
# setpriv (util-linux) has the shell killed when the worker dies, kill -9 included: its task goes
# to another worker when the lease runs out, and this run must not go on to finish it too.
_DIES_WITH_WORKER = setpriv_prefix(signal.SIGKILL)


class TaskInputError(ValueError):
    """The task cannot run here (no command); retrying will not help."""


class ShellExecutor:
    def __init__(
        self, command: str | None = None, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    ) -> None:
        self.command = command
        self.timeout_seconds = timeout_seconds

    def command_for(self, task: task_pb2.Task) -> str:
        fields = task.input.fields
        if "command" in fields and fields["command"].string_value:
            return fields["command"].string_value
        if self.command:
            return self.command
        raise TaskInputError("the task has no input.command and the worker no --command")

    def timeout_for(self, task: task_pb2.Task) -> float:
        value = task.input.fields.get("timeout_seconds")
        if value is not None and value.number_value > 0:
            return value.number_value
        return self.timeout_seconds

    async def run(self, job: Job) -> ExecutionResult:
        # A session with a repository gives the task its own worktree and branch (see workspace).
        worktree = await _worktree_for(job)
        if worktree is not None:
            job = dataclasses.replace(job, workspace=worktree.path)
        # A folder per run for the result file the command may write (see result_file).
        with tempfile.TemporaryDirectory(prefix="orch-result-") as folder:
            result_file = Path(folder) / "result.json"
            context_file = Path(folder) / "context.json"
            shared = dict(job.session.context) if job.session is not None else {}
            await asyncio.to_thread(context_file.write_text, json.dumps(shared), "utf-8")
            files = {RESULT_FILE_ENV: str(result_file), CONTEXT_FILE_ENV: str(context_file)}
            ran = await self._run(job, files)
            usage, written = await asyncio.to_thread(read_result_file, result_file)
        details, context = split_context(written)
        ran = dataclasses.replace(ran, usage=usage, details=details, context=context)
        if worktree is None or not ran.succeeded:
            return ran
        title = job.task.title or job.task.id
        changes = await worktree.changes(f"{title}\n\nTask {job.task.id}, a shell command.")
        await worktree.release()
        details = {**details, **worktree.details()}
        return dataclasses.replace(ran, details=details, changes=changes)

    async def _run(self, job: Job, files: dict[str, str]) -> ExecutionResult:
        task, workspace, cancel = job.task, job.workspace, job.cancel
        command = self.command_for(task)
        await asyncio.to_thread(workspace.mkdir, parents=True, exist_ok=True)
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *_DIES_WITH_WORKER,
            "/bin/sh",
            "-c",
            command,
            cwd=workspace,
            env={**task_environment(task, workspace), **files},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        tail: deque[bytes] = deque()
        reader = asyncio.create_task(_read_tail(proc, tail))
        outcome = await _wait(proc, cancel, self.timeout_for(task))
        # Whatever happened, nothing of the task may outlive it (background jobs included).
        await _kill_group(proc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reader), DRAIN_SECONDS)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        return ExecutionResult(
            exit_code=proc.returncode if proc.returncode is not None else -1,
            duration_seconds=time.monotonic() - started,
            output_tail=b"".join(tail)[-TAIL_BYTES:].decode("utf-8", errors="replace"),
            timed_out=outcome == "timeout",
            cancelled=outcome == "cancelled",
        )


async def _worktree_for(job: Job) -> GitWorktree | None:
    repository = job.session.repository if job.session is not None else ""
    if not repository:
        return None
    try:
        return await GitWorktree.open(repository, job.workspace, job.task)
    except WorkspaceError as exc:  # a wrong repository stays wrong on every attempt
        raise TaskInputError(f"workspace: {exc}") from exc


def task_environment(task: task_pb2.Task, workspace: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ORCH_TASK_ID=task.id,
        ORCH_SESSION_ID=task.session_id,
        ORCH_TASK_TITLE=task.title,
        ORCH_TASK_DESCRIPTION=task.description,
        ORCH_WORKSPACE=str(workspace),
    )
    return env


async def _wait(proc: asyncio.subprocess.Process, cancel: asyncio.Event, limit: float) -> str:
    """'exited', 'timeout' or 'cancelled', whichever comes first."""
    exited = asyncio.create_task(proc.wait())
    cancelled = asyncio.create_task(cancel.wait())
    try:
        done, _ = await asyncio.wait(
            {exited, cancelled}, timeout=limit, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        cancelled.cancel()
    if exited in done:
        return "exited"
    exited.cancel()
    return "cancelled" if cancelled in done else "timeout"


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        if proc.returncode is not None and not _group_alive(proc.pid):
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), KILL_GRACE_SECONDS)
        if not _group_alive(proc.pid):
            return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


async def _read_tail(proc: asyncio.subprocess.Process, tail: deque[bytes]) -> None:
    """Keeps only the last TAIL_BYTES of output, however much the command prints."""
    assert proc.stdout is not None
    size = 0
    while chunk := await proc.stdout.read(65536):
        tail.append(chunk)
        size += len(chunk)
        while tail and size - len(tail[0]) >= TAIL_BYTES:
            size -= len(tail.popleft())
