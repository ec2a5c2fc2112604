"""What every executor promises the worker: run one task, honour cancel, report an outcome."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from orchestrator.api.task.v1 import task_pb2


@dataclass(frozen=True)
class ExecutionResult:
    exit_code: int
    duration_seconds: float
    # The last few KB of combined stdout/stderr: enough to see why, small enough for an event.
    output_tail: str
    timed_out: bool = False
    cancelled: bool = False

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not (self.timed_out or self.cancelled)

    def error_message(self) -> str:
        """One line for FailTask: what went wrong and the last output line."""
        if self.timed_out:
            reason = f"timed out after {self.duration_seconds:.1f}s"
        elif self.cancelled:
            reason = "cancelled"
        else:
            reason = f"exit code {self.exit_code}"
        last = next((ln for ln in reversed(self.output_tail.splitlines()) if ln.strip()), "")
        return f"{reason}: {last.strip()}" if last else reason


class Executor(Protocol):
    async def run(
        self, task: task_pb2.Task, workspace: Path, cancel: asyncio.Event
    ) -> ExecutionResult:
        """Runs the task to its end; setting `cancel` must stop it promptly."""
        ...
