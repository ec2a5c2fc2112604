"""Transactional outbox: events are rows written with the state change, published by a relay.

`append` runs inside the caller's transaction, so an event exists exactly when its change does.
`OutboxRelay` publishes the rows to JetStream with `Nats-Msg-Id` = event id and awaits each PubAck
before deleting the row. Only one relay per schema is active at a time (a PostgreSQL advisory
lock), which keeps every aggregate's events in order; events of different aggregates go out
concurrently. NATS being down only delays publication: rows wait and are retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Any

import asyncpg
from nats.js import JetStreamContext

from orchestrator.api.events.v1 import events_pb2
from orchestrator.common.db import Conn
from orchestrator.common.events import MSG_ID_HEADER, subject_for

log = logging.getLogger(__name__)


def _channel(schema: str) -> str:
    return f"{schema}_outbox"


async def append(conn: Conn, schema: str, event: events_pb2.Event) -> None:
    """Adds `event` to the outbox within the caller's transaction and wakes the relay at commit."""
    subject = subject_for(event.aggregate_type, event.aggregate_id, event.type, event.session_id)
    headers = {MSG_ID_HEADER: event.event_id, **dict(event.trace_context)}
    await conn.execute(
        f"INSERT INTO {schema}.outbox (event_id, subject, aggregate_id, payload, headers) "
        "VALUES ($1, $2, $3, $4, $5)",
        event.event_id,
        subject,
        event.aggregate_id,
        event.SerializeToString(),
        headers,
    )
    await conn.execute("SELECT pg_notify($1, '')", _channel(schema))


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        js: JetStreamContext,
        schema: str,
        *,
        batch_size: int = 256,
        publish_timeout: float = 5.0,
        idle_poll_seconds: float = 1.0,
    ) -> None:
        self._pool = pool
        self._js = js
        self._schema = schema
        self._batch_size = batch_size
        self._publish_timeout = publish_timeout
        self._idle_poll = idle_poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._schema}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay for %s lost its connection; restarting", self._schema)
                await asyncio.sleep(1.0)

    async def _lead(self) -> None:
        """Holds the schema's relay lock on a dedicated connection and drains while holding it."""
        async with self._pool.acquire() as conn:
            key = f"orch-relay:{self._schema}"
            # Standby replicas poll for the lock; the leader keeps it for its connection's life.
            while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key):  # noqa: ASYNC110
                await asyncio.sleep(self._idle_poll)
            await conn.add_listener(_channel(self._schema), self._on_notify)
            try:
                await self._drain_forever(conn)
            finally:
                with contextlib.suppress(Exception):
                    await conn.remove_listener(_channel(self._schema), self._on_notify)
                    await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", key)

    async def _drain_forever(self, conn: Conn) -> None:
        backoff = 0.1
        while True:
            self._wake.clear()
            try:
                sent = await self.drain_once(conn)
                backoff = 0.1
            except (TimeoutError, OSError, ConnectionError) as exc:
                log.warning("outbox publish failed (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if sent < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_poll)

    async def drain_once(self, conn: Conn) -> int:
        """Publishes one batch; returns how many rows were published and removed."""
        rows = await conn.fetch(
            f"SELECT id, subject, aggregate_id, payload, headers FROM {self._schema}.outbox "
            "ORDER BY id LIMIT $1",
            self._batch_size,
        )
        if not rows:
            return 0
        by_aggregate: dict[str, list[asyncpg.Record]] = defaultdict(list)
        for row in rows:
            by_aggregate[row["aggregate_id"]].append(row)
        results = await asyncio.gather(
            *(self._publish_in_order(chain) for chain in by_aggregate.values()),
            return_exceptions=True,
        )
        done = [i for r in results if isinstance(r, list) for i in r]
        if done:
            await conn.execute(f"DELETE FROM {self._schema}.outbox WHERE id = ANY($1)", done)
            self.published += len(done)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            raise TimeoutError(str(failure) or type(failure).__name__)
        return len(done)

    async def _publish_in_order(self, chain: list[asyncpg.Record]) -> list[int]:
        """Publishes one aggregate's rows one after another; stops at the first failure."""
        published: list[int] = []
        for row in chain:
            try:
                await self._js.publish(
                    row["subject"],
                    bytes(row["payload"]),
                    timeout=self._publish_timeout,
                    headers=dict(row["headers"]),
                )
            except Exception as exc:
                if published:
                    # Keep what went out; the rest is retried on the next pass, still in order.
                    log.warning("publish of %s failed: %s", row["subject"], exc)
                    return published
                raise
            published.append(row["id"])
        return published
