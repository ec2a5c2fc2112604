"""Runs a task as one OpenCode session: prompt it, follow its events, answer its permission
requests by the session's policy, and report tokens, cost and the changes it made."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.task.v1 import task_pb2
from orchestrator.worker.executors.base import ExecutionResult, Job
from orchestrator.worker.executors.opencode.client import (
    RECONNECTED,
    EventStream,
    OpenCodeClient,
    OpenCodeError,
    OpenCodeRefused,
    OpenCodeUnavailable,
)
from orchestrator.worker.executors.opencode.events import (
    Finished,
    Notice,
    PermissionAsked,
    SessionProgress,
    ToolFinished,
    final_text,
    usage_of_messages,
)
from orchestrator.worker.executors.opencode.permissions import decide
from orchestrator.worker.executors.opencode.prompt import build_prompt, task_title
from orchestrator.worker.workspace import TaskWorkspace, WorkspaceError, workspace_for

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 600.0
# After this long without an event the executor asks the server whether the session still runs
# (an idle event lost to a dropped stream must not leave the task hanging).
QUIET_SECONDS = 5.0
# How long an aborted session gets to settle (go idle) before the run is given up.
ABORT_GRACE_SECONDS = 10.0
TAIL_CHARS = 4096
MAX_FINAL_TEXT = 4000


class Ending(Enum):
    FINISHED = "finished"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    # A permission request nobody here may answer: the run was stopped.
    STOPPED = "stopped"


@dataclass
class Drive:
    """One task's OpenCode session as it runs."""

    job: Job
    directory: str
    progress: SessionProgress
    deadline: float
    # Why the task must fail although OpenCode finished (a denied permission), if any.
    failure: str = ""
    permissions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def session_id(self) -> str:
        return self.progress.session_id


class OpenCodeExecutor:
    def __init__(
        self,
        client: OpenCodeClient,
        *,
        model: str | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.client = client
        self.model = model
        self.timeout_seconds = timeout_seconds

    async def aclose(self) -> None:
        await self.client.aclose()

    def model_for(self, job: Job) -> str | None:
        """The session's model (`provider/model`) when it names one, else the worker's (`--model`),
        else OpenCode's own default (None)."""
        if job.session is not None and job.session.model:
            return job.session.model
        return self.model

    def timeout_for(self, task: task_pb2.Task) -> float:
        value = task.input.fields.get("timeout_seconds")
        if value is not None and value.number_value > 0:
            return value.number_value
        return self.timeout_seconds

    async def run(self, job: Job) -> ExecutionResult:
        started = time.monotonic()
        try:
            workspace = await workspace_for(job)
        except WorkspaceError as exc:
            return _failed(started, f"workspace: {exc}", permanent=True)
        try:
            drive, ending, messages = await self._drive(job, workspace, started)
        except OpenCodeUnavailable as exc:
            return _failed(started, f"OpenCode unavailable: {exc}", permanent=False)
        except OpenCodeRefused as exc:
            return _failed(started, str(exc), permanent=exc.status < 500)
        return await self._result(job, workspace, drive, ending, messages, started)

    async def _drive(
        self, job: Job, workspace: TaskWorkspace, started: float
    ) -> tuple[Drive, Ending, list[dict[str, Any]]]:
        directory = str(workspace.path.resolve())
        title = f"{task_title(job.task)} [{job.task.id[:8]}]"
        session = await self.client.create_session(directory, title)
        drive = Drive(
            job=job,
            directory=directory,
            progress=SessionProgress(str(session["id"])),
            deadline=started + self.timeout_for(job.task),
        )
        async with self.client.events(directory) as events:
            prompt = build_prompt(job.task, job.session)
            await self.client.prompt(drive.session_id, directory, prompt, self.model_for(job))
            try:
                ending = await self._follow(drive, events)
            except Exception:
                # The task fails here; its OpenCode session must not go on working regardless.
                with contextlib.suppress(OpenCodeError):
                    await self.client.abort(drive.session_id, directory)
                raise
        messages: list[dict[str, Any]] = []
        with contextlib.suppress(OpenCodeError):
            messages = await self.client.messages(drive.session_id, directory)
        return drive, ending, messages

    async def _follow(self, drive: Drive, events: EventStream) -> Ending:
        while True:
            left = drive.deadline - time.monotonic()
            if drive.job.cancel.is_set():
                await self._abort(drive, events)
                return Ending.CANCELLED
            if left <= 0:
                await self._abort(drive, events)
                return Ending.TIMED_OUT
            event = await _next_or_cancel(events, drive.job.cancel, min(QUIET_SECONDS, left))
            if event is None or event.get("type") == RECONNECTED:
                if drive.job.cancel.is_set() or not await self._went_idle(drive):
                    continue
                return Ending.FINISHED
            for notice in drive.progress.apply(event):
                ending = await self._act(drive, notice)
                if ending is Ending.STOPPED:
                    await self._abort(drive, events)
                if ending is not None:
                    return ending

    async def _act(self, drive: Drive, notice: Notice) -> Ending | None:
        if isinstance(notice, Finished):
            return Ending.FINISHED
        if isinstance(notice, ToolFinished):
            label, data = notice.checkpoint()
            await drive.job.checkpoint(label, data)
            return None
        if isinstance(notice, PermissionAsked):
            return await self._answer(drive, notice)
        return None

    async def _answer(self, drive: Drive, asked: PermissionAsked) -> Ending | None:
        request = asked.request
        policy = drive.job.session.permission_policy if drive.job.session else "escalate"
        decision = decide(policy, request)
        try:
            await self.client.reply_permission(request.id, drive.directory, decision.reply)
        except OpenCodeRefused as exc:  # answered or withdrawn meanwhile: nothing waits on it
            log.warning("permission %s not answered: %s", request.id, exc)
        note = {
            "permission": request.permission,
            "patterns": list(request.patterns),
            "policy": policy,
            "reply": decision.reply,
        }
        drive.permissions.append(note)
        await drive.job.checkpoint(f"permission:{request.permission}", note)
        if decision.failure and not drive.failure:
            drive.failure = decision.failure
        return Ending.STOPPED if decision.stop else None

    async def _went_idle(self, drive: Drive) -> bool:
        """Asked after a quiet spell or a re-opened stream: has the session stopped running?
        Only once it was seen busy (or failed), since a new prompt may take seconds to start."""
        busy = await self.client.busy_sessions(drive.directory)
        if drive.session_id in busy:
            drive.progress.started = True
            return False
        return drive.progress.started or bool(drive.progress.error)

    async def _abort(self, drive: Drive, events: EventStream) -> None:
        try:
            await self.client.abort(drive.session_id, drive.directory)
        except OpenCodeError as exc:
            log.warning("abort of OpenCode session %s failed: %s", drive.session_id, exc)
            return
        settle = time.monotonic() + ABORT_GRACE_SECONDS
        while not drive.progress.finished and (left := settle - time.monotonic()) > 0:
            event = await events.next(min(left, 1.0))
            if event is not None:
                drive.progress.apply(event)

    async def _result(
        self,
        job: Job,
        workspace: TaskWorkspace,
        drive: Drive,
        ending: Ending,
        messages: list[dict[str, Any]],
        started: float,
    ) -> ExecutionResult:
        text = final_text(messages)
        usage = _larger(drive.progress.usage, usage_of_messages(messages))
        reason, permanent = _verdict(drive, ending)
        changes = None
        details: dict[str, Any] = {
            "opencode_session_id": drive.session_id,
            "final_text": text[:MAX_FINAL_TEXT],
            "tool_calls": drive.progress.tools_finished,
            "tool_errors": drive.progress.tool_errors,
        }
        if drive.permissions:
            details["permissions"] = drive.permissions
        if model := self.model_for(job):
            details["model"] = model
        if ending is Ending.FINISHED and not reason:
            # Only finished work is committed and integrated; a failed run leaves its worktree.
            try:
                changes = await workspace.changes(_commit_message(job, drive.session_id))
                await workspace.release()
            except WorkspaceError as exc:
                reason, permanent = f"recording the changes failed: {exc}", False
            details.update(workspace.details())
        return ExecutionResult(
            exit_code=0 if not reason and ending is Ending.FINISHED else 1,
            duration_seconds=time.monotonic() - started,
            output_tail=text[-TAIL_CHARS:],
            timed_out=ending is Ending.TIMED_OUT,
            cancelled=ending is Ending.CANCELLED,
            usage=usage,
            changes=changes,
            details=details,
            permanent=permanent,
            reason=reason,
        )


def _verdict(drive: Drive, ending: Ending) -> tuple[str, bool]:
    """(why the run failed, whether another attempt is pointless); ("", False) on success."""
    if ending in (Ending.CANCELLED, Ending.TIMED_OUT):
        return "", False
    if drive.failure:
        return drive.failure, True
    if drive.progress.error:
        return f"OpenCode: {drive.progress.error}", False
    if drive.progress.aborted:
        return "the OpenCode session was aborted", False
    return "", False


async def _next_or_cancel(
    events: EventStream, cancel: asyncio.Event, within: float
) -> dict[str, Any] | None:
    getter = asyncio.create_task(events.next(within))
    cancelled = asyncio.create_task(cancel.wait())
    try:
        await asyncio.wait({getter, cancelled}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        cancelled.cancel()
    if getter.done():
        return getter.result()
    getter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await getter
    return None


def _larger(a: common_pb2.Usage, b: common_pb2.Usage) -> common_pb2.Usage:
    """Events may be lost to a dropped stream and the message list misses sub-sessions: the
    fuller count wins."""
    total_a = a.input_tokens + a.output_tokens + a.reasoning_tokens
    total_b = b.input_tokens + b.output_tokens + b.reasoning_tokens
    return a if total_a >= total_b else b


def _commit_message(job: Job, session_id: str) -> str:
    return (
        f"{task_title(job.task)}\n\nTask {job.task.id} of session {job.task.session_id}, "
        f"done by OpenCode session {session_id}."
    )


def _failed(started: float, reason: str, *, permanent: bool) -> ExecutionResult:
    return ExecutionResult(
        exit_code=1,
        duration_seconds=time.monotonic() - started,
        output_tail="",
        permanent=permanent,
        reason=reason,
    )
