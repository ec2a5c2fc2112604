"""Frees the slot a task reserved when the task service reports the task left its agent.

Consumes task events durably (`orch.task.>`), each once thanks to the inbox. A task that is
no longer ASSIGNED or IN_PROGRESS holds no slot. A reservation made after the event happened
belongs to a newer route of the same task and is kept; a finished task (COMPLETED, FAILED,
CANCELLED, SKIPPED) is never routed again, so its slot goes whenever its event arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

import asyncpg
from google.protobuf.message import DecodeError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from orchestrator.agent.service import AgentService
from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.task.v1 import task_pb2
from orchestrator.common.consumer import Consumer
from orchestrator.common.db import Conn

log = logging.getLogger(__name__)

DURABLE = "agent-task-slots"
SUBJECT = "orch.task.>"
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
    """Runs the pull loop itself around `Consumer.process` (inbox, transaction, handler) so it
    can unsubscribe on stop: a pull subscription left open makes `nc.drain()` wait out its
    whole timeout."""

    def __init__(
        self, pool: asyncpg.Pool, js: JetStreamContext, stream: str, service: AgentService
    ) -> None:
        self._js = js
        self._stream = stream
        self._service = service
        self._inbox = Consumer(
            pool,
            js,
            schema="agent",
            stream=stream,
            durable=DURABLE,
            filter_subject=SUBJECT,
            handler=self.handle,
        )
        self._sub: JetStreamContext.PullSubscription | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        config = ConsumerConfig(
            durable_name=DURABLE,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=SUBJECT,
            max_deliver=10,
            ack_wait=30.0,
        )
        await self._js.add_consumer(self._stream, config=config)
        self._sub = await self._js.pull_subscribe_bind(DURABLE, stream=self._stream)
        self._task = asyncio.create_task(self._run(self._sub), name="agent-task-releases")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _run(self, sub: JetStreamContext.PullSubscription) -> None:
        while True:
            try:
                msgs = await sub.fetch(64, timeout=1.0)
            except (NatsTimeoutError, TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("fetching task events failed: %s", exc)
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                try:
                    event = events_pb2.Event.FromString(msg.data)
                except DecodeError:
                    log.error("dropping an undecodable message on %s", msg.subject)
                    await msg.term()
                    continue
                try:
                    await self._inbox.process(event)
                except Exception:
                    log.exception("releasing after %s failed; it will be redelivered", msg.subject)
                    await msg.nak(delay=1.0)
                    continue
                await msg.ack()

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
