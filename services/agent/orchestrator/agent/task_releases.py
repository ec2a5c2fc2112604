"""Frees the slot a task reserved when the task service reports the task left its agent.

Consumes the events of tasks leaving their agents, durably, each once thanks to the inbox. A
task that is no longer ASSIGNED or IN_PROGRESS holds no slot. A reservation made after the
event happened belongs to a newer route of the same task and is kept; a finished task
(COMPLETED, FAILED, CANCELLED, SKIPPED) is never routed again, so its slot goes whenever its
event arrives.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import asyncpg
from nats.js import JetStreamContext

from orchestrator.agent.service import AgentService
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


class TaskReleases:
    """The durable consumer (shared `Consumer`: inbox, transaction, ack after commit) whose
    handler frees slots."""

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
        )

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def handle(self, conn: Conn, event: events_pb2.Event) -> None:
        if event.WhichOneof("payload") != "task":
            return
        task = event.task.task
        if not task.id or task.status in _HOLDING or task.status == 0:
            return
        if task.status in _FINISHED:
            happened = _END_OF_TIME
        else:
            happened = event.occurred_at.ToDatetime(tzinfo=UTC)
        await self._service.release_task(conn, task.id, happened)
