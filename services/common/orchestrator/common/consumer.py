"""Idempotent, durable event consumption.

A `Consumer` binds to a durable pull consumer (replicas bound to the same durable share the work,
like a queue group). Each message is handled inside a PostgreSQL transaction that first records
its event id in the schema's inbox: a redelivered event finds its id there and is skipped. The
message is acked only after that transaction commits, so a crash in between means a redelivery,
never a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from orchestrator.api.events.v1 import events_pb2
from orchestrator.common.db import Conn

log = logging.getLogger(__name__)

Handler = Callable[[Conn, events_pb2.Event], Awaitable[None]]


class Consumer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        js: JetStreamContext,
        *,
        schema: str,
        stream: str,
        durable: str,
        filter_subject: str,
        handler: Handler,
        batch: int = 64,
        max_deliver: int = 10,
        ack_wait_seconds: float = 30.0,
    ) -> None:
        self._pool = pool
        self._js = js
        self._schema = schema
        self._stream = stream
        self._durable = durable
        self._filter = filter_subject
        self._handler = handler
        self._batch = batch
        self._config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=filter_subject,
            max_deliver=max_deliver,
            ack_wait=ack_wait_seconds,
        )
        self._task: asyncio.Task[None] | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self.handled = 0

    async def start(self) -> None:
        # add_consumer with the same durable and config is idempotent on the server.
        await self._js.add_consumer(self._stream, config=self._config)
        self._sub = await self._js.pull_subscribe_bind(self._durable, stream=self._stream)
        self._task = asyncio.create_task(self._run(self._sub), name=f"consumer-{self._durable}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._sub is not None:
            # Left subscribed, the pull subscription holds up the connection's drain.
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _run(self, sub: JetStreamContext.PullSubscription) -> None:
        while True:
            try:
                msgs = await sub.fetch(self._batch, timeout=1.0)
            except (NatsTimeoutError, TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("fetch on %s failed: %s", self._durable, exc)
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                await self._handle(msg)

    async def _handle(self, msg: Msg) -> None:
        event = events_pb2.Event()
        try:
            event.ParseFromString(msg.data)
        except Exception:
            log.error("dropping an undecodable message on %s", msg.subject)
            await msg.term()
            return
        try:
            await self.process(event)
        except Exception:
            log.exception(
                "handling %s %s failed; it will be redelivered", event.type, event.event_id
            )
            await msg.nak(delay=1.0)
            return
        await msg.ack()

    async def process(self, event: events_pb2.Event) -> bool:
        """Runs the handler once per event id; returns False when the event was seen before."""
        async with self._pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                f"INSERT INTO {self._schema}.inbox (consumer, event_id) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING RETURNING true",
                self._durable,
                event.event_id,
            )
            if not inserted:
                return False
            await self._handler(conn, event)
        self.handled += 1
        return True
