"""One task's run on this worker: start it, keep its lease, execute, report with the token.

Every call presents the run's fencing token; FAILED_PRECONDITION means the lease is no longer
ours (expired, released, cancelled), and then the only right move is to drop the task quietly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.protobuf import struct_pb2

from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.task.v1 import task_pb2
from orchestrator.worker.executors.base import (
    Checkpoint,
    ExecutionResult,
    Executor,
    Job,
    SessionBrief,
)
from orchestrator.worker.executors.shell import TaskInputError

if TYPE_CHECKING:
    from orchestrator.worker.work_stream import WorkStream

log = logging.getLogger(__name__)
T = TypeVar("T")
# What the executor is told of a task's session; None when it cannot be known.
BriefOf = Callable[[task_pb2.Task], Awaitable[SessionBrief | None]]
# Records a checkpoint of a task's session: (task, label, data).
CheckpointOf = Callable[[task_pb2.Task, str, Any], Awaitable[None]]
# Sets values at dot paths of the default context of a task's session: (task, values).
ShareOf = Callable[[task_pb2.Task, Mapping[str, Any]], Awaitable[None]]
# What a succeeded task's entry under `tasks.<id>` of its session's context may hold.
SUMMARY_CHARS = 300
SHARED_FILES = 20

RPC_TIMEOUT_SECONDS = 10.0
# Codes after which a repeated call may succeed; anything else is final.
TRANSIENT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
REPORT_ATTEMPTS = 5
MIN_RENEW_SECONDS = 1.0


@dataclass
class Run:
    task: task_pb2.Task
    # Called on every lease renewal so JetStream does not redeliver a long run's assignment.
    touch: Callable[[], Awaitable[None]]
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    # Why the worker stopped it early: "released" (shutdown), "aborted" (cancel/pause event),
    # "lease_lost" (renewal refused). Empty when it ran to its end.
    stop_reason: str = ""
    handle: asyncio.Task[None] | None = None
    # The trace of the assignment (W3C headers): the run is a span of it.
    trace_context: Mapping[str, str] = field(default_factory=dict)

    @property
    def task_id(self) -> str:
        return self.task.id

    @property
    def token(self) -> int:
        return self.task.fencing_token

    def abort(self, reason: str) -> None:
        if not self.stop_reason:
            self.stop_reason = reason
        self.cancel.set()


@dataclass(frozen=True)
class Broken:
    """The executor raised instead of returning a result: the run fails with this error."""

    error: str
    retryable: bool


# How a run ended, as `TaskRunner.execute` says and `TaskRunner.report` tells the service.
Outcome = ExecutionResult | Broken


def is_transient(exc: grpc.aio.AioRpcError) -> bool:
    return exc.code() in TRANSIENT


class TaskRunner:
    def __init__(
        self,
        tasks: WorkStream,
        executor: Executor,
        workspace: Path,
        actor: str,
        brief_of: BriefOf | None = None,
        checkpoint_of: CheckpointOf | None = None,
        lease_seconds: int = 0,
        share_of: ShareOf | None = None,
    ) -> None:
        self._tasks = tasks
        self._executor = executor
        self._workspace = workspace
        self._actor = actor
        self._brief_of = brief_of
        self._checkpoint_of = checkpoint_of
        self._share_of = share_of
        # 0: the service's default lease on every renewal.
        self._lease_seconds = lease_seconds

    @property
    def _uses_session(self) -> bool:
        """An executor that reads nothing of the session says so (uses_session = False)."""
        return bool(getattr(self._executor, "uses_session", True))

    async def job_for(self, run: Run) -> Job:
        """The executor's view of a run: its task, folder, cancel switch, session and a way to
        record checkpoints."""
        brief = None
        if self._brief_of is not None and self._uses_session:
            try:
                brief = await self._brief_of(run.task)
            except Exception as exc:  # the run goes on without what it could not learn
                log.warning("session of task %s unknown: %s", run.task_id, exc)
        job = Job(task=run.task, workspace=self._workspace, cancel=run.cancel, session=brief)
        record = self._checkpoint_of
        if record is not None:
            job.checkpoint = _checkpointer(run.task, record)
        return job

    async def start(self, task: task_pb2.Task) -> task_pb2.Task | None:
        """ASSIGNED -> IN_PROGRESS; None when the service refuses (the assignment is stale)."""
        # The worker's own lease replaces the scheduler's (minutes long) in the same write, so a
        # worker that dies frees the task within that time.
        request = task_pb2.StartTaskRequest(
            task_id=task.id,
            fencing_token=task.fencing_token,
            actor=self._actor,
            lease_seconds=self._lease_seconds,
        )
        try:
            reply = await self._tasks.StartTask(request)
        except grpc.aio.AioRpcError as exc:
            if is_transient(exc):
                raise
            log.info("task %s refused to start (%s): dropped", task.id, exc.details())
            return None
        return reply.task

    async def release(self, task: task_pb2.Task, reason: str) -> None:
        request = task_pb2.ReleaseTaskRequest(
            task_id=task.id, fencing_token=task.fencing_token, actor=self._actor, reason=reason
        )
        await self._report(task.id, "release", lambda: self._tasks.ReleaseTask(request))

    async def execute(self, run: Run) -> Outcome:
        """Runs the executor under the run's lease and says what to report. The report is
        `report`'s, so the worker can free the slot before it goes out."""
        keeper = asyncio.create_task(self._keep_lease(run))
        try:
            return await self._executor.run(await self.job_for(run))
        except TaskInputError as exc:
            return Broken(str(exc), retryable=False)
        except Exception as exc:  # the executor broke, not the task: another attempt may work
            log.exception("executor failed on task %s", run.task_id)
            return Broken(f"executor error: {exc}", retryable=True)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def report(self, run: Run, outcome: Outcome) -> None:
        """Tells the service how the run ended (or hands it back, or says nothing when it was
        stopped here), with the run's token."""
        if isinstance(outcome, Broken):
            await self._fail(run, outcome.error, retryable=outcome.retryable)
        else:
            await self._conclude(run, outcome)

    async def _conclude(self, run: Run, result: ExecutionResult) -> None:
        if run.stop_reason == "released":
            await self.release(run.task, "worker shutting down")
        elif run.stop_reason:
            log.info("task %s stopped here (%s); not reported", run.task_id, run.stop_reason)
        elif result.succeeded:
            # Shared first: the dependants this completion makes READY read it when they start.
            await self._share(run, result)
            request = task_pb2.CompleteTaskRequest(
                task_id=run.task_id,
                fencing_token=run.token,
                actor=self._actor,
                result=result_struct(result),
                usage=result.usage,
                changes=result.changes,
            )
            await self._report(run.task_id, "complete", lambda: self._tasks.CompleteTask(request))
        else:
            # Nonzero exits and timeouts are retryable: the service's attempts and backoff
            # (on another agent when one fits) decide when to give up, not the worker.
            await self._fail(
                run,
                result.error_message(),
                retryable=not result.permanent,
                usage=result.usage,
            )

    async def _share(self, run: Run, result: ExecutionResult) -> None:
        """Writes what the run shares into its session's context: the executor's values and an
        entry for the task under `tasks.<id>` (title, summary, changed files). Best effort, as
        checkpoints are: a context that cannot be written is logged, the task still completes.
        Not for executors that read nothing of the session (the no-op one)."""
        if self._share_of is None or not self._uses_session:
            return
        values = {**result.context, f"tasks.{run.task_id}": task_entry(run.task, result)}
        try:
            await self._share_of(run.task, values)
        except Exception as exc:
            log.warning("context of task %s not shared: %s", run.task_id, exc)

    async def _fail(
        self,
        run: Run,
        error: str,
        *,
        retryable: bool,
        usage: common_pb2.Usage | None = None,
    ) -> None:
        request = task_pb2.FailTaskRequest(
            task_id=run.task_id,
            fencing_token=run.token,
            actor=self._actor,
            error=error[:2000],
            retryable=retryable,
            usage=usage,
        )
        await self._report(run.task_id, "fail", lambda: self._tasks.FailTask(request))

    async def _report(self, task_id: str, what: str, call: Callable[[], Awaitable[T]]) -> bool:
        """Retries while the service is unreachable; a refusal means the lease is gone.
        True when the call went through."""
        for attempt in range(REPORT_ATTEMPTS):
            try:
                async with asyncio.timeout(RPC_TIMEOUT_SECONDS):
                    await call()
                return True
            except (grpc.aio.AioRpcError, TimeoutError) as exc:
                if isinstance(exc, grpc.aio.AioRpcError) and not is_transient(exc):
                    log.warning("%s of task %s refused: %s", what, task_id, exc.details())
                    return False
                await asyncio.sleep(0.5 * 2**attempt)
        log.error("could not %s task %s", what, task_id)
        return False

    async def _keep_lease(self, run: Run) -> None:
        # The started task carries this worker's lease (StartTask set it).
        expires = run.task.lease_expires_at.ToDatetime(tzinfo=UTC)
        delay = _renew_delay(expires)
        while True:
            await asyncio.sleep(delay)
            delay = MIN_RENEW_SECONDS  # after a failed try
            request = task_pb2.RenewLeaseRequest(
                task_id=run.task_id,
                fencing_token=run.token,
                actor=self._actor,
                lease_seconds=self._lease_seconds,
            )
            try:
                reply = await self._tasks.RenewLease(request)
            except grpc.aio.AioRpcError as exc:
                if not is_transient(exc):
                    log.warning("lease of task %s lost: %s", run.task_id, exc.details())
                    run.abort("lease_lost")
                    return
                continue
            expires = reply.lease_expires_at.ToDatetime(tzinfo=UTC)
            delay = _renew_delay(expires)
            with contextlib.suppress(Exception):
                await run.touch()


def _renew_delay(expires: datetime) -> float:
    """A third of what is left of the lease, so two renewals may fail before it runs out."""
    left = (expires - datetime.now(UTC)).total_seconds()
    return max(MIN_RENEW_SECONDS, left / 3)


def result_struct(result: ExecutionResult) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(dict(result.details))
    out.update(
        {
            "exit_code": result.exit_code,
            "duration_seconds": round(result.duration_seconds, 3),
            "output_tail": result.output_tail,
        }
    )
    return out


def task_entry(task: task_pb2.Task, result: ExecutionResult) -> dict[str, Any]:
    """A succeeded task as its session's context remembers it, small enough for many."""
    # A shell command's own summary, an OpenCode agent's last words, else the output's end.
    summary = result.details.get("summary") or result.details.get("final_text")
    if not isinstance(summary, str) or not summary.strip():
        summary = result.output_tail
    entry: dict[str, Any] = {"title": task.title, "summary": summary.strip()[-SUMMARY_CHARS:]}
    if result.changes is not None and result.changes.changed_files:
        entry["files"] = list(result.changes.changed_files[:SHARED_FILES])
    return entry


def _checkpointer(task: task_pb2.Task, record: CheckpointOf) -> Checkpoint:
    async def checkpoint(label: str, data: Any) -> None:
        try:
            await record(task, label, data)
        except Exception as exc:  # progress notes are best effort; the run goes on
            log.warning("checkpoint %r of task %s not recorded: %s", label, task.id, exc)

    return checkpoint
