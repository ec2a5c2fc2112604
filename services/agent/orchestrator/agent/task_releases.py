"""Follows tasks leaving their agents: records each run's outcome in the agent's track record
and frees the slot the task held.

Consumes the events of tasks leaving their agents, durably, each once thanks to the inbox. A run
that ended (the task left IN_PROGRESS completed, held, awaiting approval, failed or scheduled for
a retry) is recorded against the agent it ran on (`last_agent_id`), once per (task, fencing
token), with its duration from start to end: workers report to the task service only. A task
that is no longer ASSIGNED or IN_PROGRESS holds no slot. A reservation made after the event
happened belongs to a newer route of the same task and is kept; a finished task (COMPLETED,
FAILED, CANCELLED, SKIPPED) is never routed again, so its slot goes whenever its event arrives.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import asyncpg
from nats.js import JetStreamContext

from orchestrator.agent.domain import TaskOutcome
from orchestrator.agent.service import AgentService, ResultReport
from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.task.v1 import task_pb2
from orchestrator.common.consumer import Consumer
from orchestrator.common.db import Conn

log = logging.getLogger(__name__)

DURABLE = "agent-task-slots"
# The events of a task leaving its agent (not created, ready, assigned, started and the like).
SUBJECT = tuple(
    f"orch.task.*.*.{name}"
    for name in (
        "completed", "awaiting_approval", "held", "failed", "retry_scheduled", "released",
        "lease_expired", "blocked", "paused", "cancelled", "skipped", "rejected",
    )
)  # fmt: skip
_HOLDING = frozenset({task_pb2.TASK_STATUS_ASSIGNED, task_pb2.TASK_STATUS_IN_PROGRESS})
_FINISHED = frozenset(
    {
        task_pb2.TASK_STATUS_COMPLETED,
        task_pb2.TASK_STATUS_FAILED,
        task_pb2.TASK_STATUS_CANCELLED,
        task_pb2.TASK_STATUS_SKIPPED,
    }
)
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)
# The ends of a run (the task left IN_PROGRESS) by event type, as track-record outcomes.
_RUN_ENDS = {
    "task.completed": TaskOutcome.COMPLETED,
    "task.awaiting_approval": TaskOutcome.COMPLETED,
    "task.held": TaskOutcome.COMPLETED,
    "task.failed": TaskOutcome.FAILED,
    "task.retry_scheduled": TaskOutcome.FAILED,
}
ACTOR = "task-events"
# An agent's track record is written once per batch: the first run end of a batch waits this
# long for others (the record and the freed slots lag by as much), up to BATCH events.
LINGER_SECONDS = 0.05
BATCH = 256


class TaskReleases:
    """The durable consumer (shared `Consumer`: inbox, transaction, ack after commit) whose
    handlers record run outcomes and free slots; a fetched batch writes each agent once."""

    def __init__(
        self, pool: asyncpg.Pool, js: JetStreamContext, stream: str, service: AgentService
    ) -> None:
        self._service = service
        self._consumer = Consumer(
            pool,
            js,
            schema="agent",
            stream=stream,
            durable=DURABLE,
            filter_subject=SUBJECT,
            handler=self.handle,
            batch_handler=self.handle_batch,
            batch=BATCH,
            linger_seconds=LINGER_SECONDS,
        )

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def handle(self, conn: Conn, event: events_pb2.Event) -> None:
        await self.handle_batch(conn, [event])

    async def handle_batch(self, conn: Conn, events: list[events_pb2.Event]) -> None:
        leaving: list[events_pb2.Event] = []
        runs: dict[str, list[ResultReport]] = {}
        for event in events:
            if event.WhichOneof("payload") != "task":
                continue
            task = event.task.task
            if not task.id or task.status in _HOLDING or task.status == 0:
                continue
            leaving.append(event)
            report = run_report(event)
            if report is not None:
                runs.setdefault(task.last_agent_id, []).append(report)
        recorded: set[str] = set()
        for agent_id, reports in runs.items():
            recorded |= await self._service.record_runs(conn, agent_id, reports)
        for event in leaving:
            task = event.task.task
            if task.id in recorded:
                continue  # recording freed the slot
            if task.status in _FINISHED:
                happened = _END_OF_TIME
            else:
                happened = event.occurred_at.ToDatetime(tzinfo=UTC)
            await self._service.release_task(conn, task.id, happened)


def run_report(event: events_pb2.Event) -> ResultReport | None:
    """The outcome of the run a task event ends, or None when it ends none."""
    task = event.task.task
    outcome = _RUN_ENDS.get(event.type)
    if (
        outcome is None
        or event.task.previous_status != task_pb2.TASK_STATUS_IN_PROGRESS
        or not task.last_agent_id
        or not task.HasField("started_at")
    ):
        return None
    seconds = (event.occurred_at.ToNanoseconds() - task.started_at.ToNanoseconds()) / 1e9
    return ResultReport(
        task_id=task.id,
        fencing_token=task.fencing_token,
        outcome=outcome,
        duration_seconds=max(0.0, seconds),
        actor=ACTOR,
    )
