"""An executor that does nothing and succeeds: for measuring the orchestration alone.

It exists for benchmarks and smoke tests of a mesh; a worker running it says so when it
registers (metadata executor=noop), so nobody mistakes its results for real work.
"""

from __future__ import annotations

import time

from orchestrator.worker.executors.base import ExecutionResult, Job


class NoopExecutor:
    # It reads nothing of the task's session: the runner need not look the session up.
    uses_session = False

    async def run(self, job: Job) -> ExecutionResult:
        started = time.monotonic()
        cancelled = job.cancel.is_set()
        return ExecutionResult(
            exit_code=0,
            duration_seconds=time.monotonic() - started,
            output_tail="",
            cancelled=cancelled,
            details={"executor": "noop"},
        )
