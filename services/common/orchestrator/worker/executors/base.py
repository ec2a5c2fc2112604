"""What every executor promises the worker: run one job, honour cancel, report an outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.task.v1 import task_pb2

# Records a step of a running task as a checkpoint of its session: (label, data). Best effort:
# a checkpoint that cannot be written is logged, never fails the task.
Checkpoint = Callable[[str, Mapping[str, Any]], Awaitable[None]]


async def _no_checkpoint(label: str, data: Mapping[str, Any]) -> None:
    return None


@dataclass(frozen=True)
class SessionBrief:
    """What an executor may know of the session a task belongs to."""

    id: str
    title: str = ""
    prompt: str = ""
    # How permission requests of the session's tasks are answered: allow, deny or escalate.
    permission_policy: str = "allow"
    # A git repository the session's tasks work in, each in its own worktree; empty for none.
    repository: str = ""
    # The data of the session's default context (empty when it has none).
    context: Mapping[str, Any] = field(default_factory=dict)
    # The model the session asks for (`provider/model`); empty leaves it to the worker.
    model: str = ""


@dataclass
class Job:
    task: task_pb2.Task
    # The folder the task works in (created by the executor when missing).
    workspace: Path
    # Set when the run must stop now (cancel, pause, shutdown, lost lease).
    cancel: asyncio.Event
    session: SessionBrief | None = None
    checkpoint: Checkpoint = _no_checkpoint


@dataclass(frozen=True)
class ExecutionResult:
    exit_code: int
    duration_seconds: float
    # The last few KB of output: enough to see why, small enough for an event.
    output_tail: str
    timed_out: bool = False
    cancelled: bool = False
    # Tokens and cost spent (LLM executors); added to the task's and the session's totals.
    usage: common_pb2.Usage | None = None
    # What the task changed in its git worktree, when it ran in one.
    changes: task_pb2.WorkspaceChanges | None = None
    # More fields for the task's result (JSON-compatible values), beside exit code and tail.
    details: Mapping[str, Any] = field(default_factory=dict)
    # Set by the executor when it failed for a reason another attempt cannot fix.
    permanent: bool = False
    # The executor's own reason for failing, when exit code and tail do not say it.
    reason: str = ""
    # What the task shares with the rest of its session: values set at these dot paths of the
    # session's default context when the run succeeds (before it is reported complete).
    context: Mapping[str, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not (self.timed_out or self.cancelled)

    def error_message(self) -> str:
        """One line for FailTask: what went wrong and the last output line."""
        if self.reason:
            reason = self.reason
        elif self.timed_out:
            reason = f"timed out after {self.duration_seconds:.1f}s"
        elif self.cancelled:
            reason = "cancelled"
        else:
            reason = f"exit code {self.exit_code}"
        last = next((ln for ln in reversed(self.output_tail.splitlines()) if ln.strip()), "")
        return f"{reason}: {last.strip()}" if last else reason


class Executor(Protocol):
    async def run(self, job: Job) -> ExecutionResult:
        """Runs the job's task to its end; setting `job.cancel` must stop it promptly."""
        ...
