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
import json
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
from nats.js import JetStreamContext

from orchestrator.api.events.v1 import events_pb2
from orchestrator.common.db import Conn
from orchestrator.common.events import MSG_ID_HEADER, event_subject
from orchestrator.common.metrics import (
    EVENTS_PUBLISHED,
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE,
    poll_seconds,
    serving,
)

log = logging.getLogger(__name__)


def channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel a trigger on the outbox table notifies after each insert."""
    return f"{schema}_outbox"


def rows(events: Sequence[events_pb2.Event]) -> tuple[list[Any], ...]:
    """The outbox columns of `events` as parallel arrays, the parameters of `insert_sql`."""
    ids, subjects, aggregates, payloads, headers = [], [], [], [], []
    for event in events:
        ids.append(event.event_id)
        subjects.append(event_subject(event))
        aggregates.append(event.aggregate_id)
        payloads.append(event.SerializeToString())
        headers.append(json.dumps({MSG_ID_HEADER: event.event_id, **dict(event.trace_context)}))
    return ids, subjects, aggregates, payloads, headers


def insert_sql(schema: str, first: int, *, only_if: str | None = None) -> str:
    """An INSERT of the `rows` passed as parameters $first..$first+4. With `only_if`, the name
    of a CTE, rows are written only when that CTE returned something; this lets a state change
    and its events be one statement, hence one round trip and one atomic write."""
    guard = f" WHERE EXISTS (SELECT 1 FROM {only_if})" if only_if else ""
    a, b, c, d, e = (f"${first + i}" for i in range(5))
    return (
        f"INSERT INTO {schema}.outbox (event_id, subject, aggregate_id, payload, headers)"
        f" SELECT i, s, g, p, h::jsonb FROM unnest({a}::uuid[], {b}::text[], {c}::text[],"
        f" {d}::bytea[], {e}::text[]) AS t(i, s, g, p, h){guard}"
    )


async def append(conn: Conn, schema: str, *events: events_pb2.Event) -> None:
    """Adds `events` to the outbox within the caller's transaction (or as one statement)."""
    await conn.execute(insert_sql(schema, 1), *rows(events))


class OutboxRelay:
    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        js: JetStreamContext,
        schema: str,
        *,
        batch_size: int = 256,
        publish_timeout: float = 5.0,
        idle_poll_seconds: float = 1.0,
        linger_seconds: float = 0.005,
    ) -> None:
        self._connect = connect
        self._js = js
        self._schema = schema
        self._batch_size = batch_size
        self._publish_timeout = publish_timeout
        self._idle_poll = idle_poll_seconds
        self._linger = linger_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self._published_metric = EVENTS_PUBLISHED.labels(schema)
        # The leader reports the backlog between drains, every `poll_seconds()`, while
        # metrics are served.
        self._next_watch = 0.0

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
        """Holds the schema's relay lock on its own connection and drains while holding it.

        The connection is not from the pool: the advisory lock and LISTEN belong to it alone and
        end with it, whatever happens to this task."""
        conn = await self._connect()
        try:
            key = f"orch-relay:{self._schema}"
            # Standby replicas poll for the lock; the leader keeps it for its connection's life.
            while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key):  # noqa: ASYNC110
                await asyncio.sleep(self._idle_poll)
            await conn.add_listener(channel(self._schema), self._on_notify)
            await self._drain_forever(conn)
        finally:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    async def _drain_forever(self, conn: Conn) -> None:
        backoff = 0.1
        while True:
            self._wake.clear()
            if serving() and time.monotonic() >= self._next_watch:
                await self.watch_backlog(conn)  # also while NATS is down: then it matters most
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
                # Under load, let a few more commits land so one batch carries them all.
                await asyncio.sleep(self._linger)

    async def watch_backlog(self, conn: Conn) -> None:
        """Sets `orch_outbox_backlog` and `orch_outbox_oldest_age_seconds` of the schema."""
        self._next_watch = time.monotonic() + poll_seconds()
        row = await conn.fetchrow(
            f"SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0)"
            f" AS age FROM {self._schema}.outbox"
        )
        if row is not None:
            OUTBOX_BACKLOG.labels(self._schema).set(row["n"])
            OUTBOX_OLDEST_AGE.labels(self._schema).set(float(row["age"]))

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
            self._published_metric.inc(len(done))
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
