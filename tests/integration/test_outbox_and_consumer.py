"""The outbox relay and the idempotent consumer against real PostgreSQL and NATS JetStream."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from orchestrator.api.events.v1 import events_pb2
from orchestrator.common import outbox, pull
from orchestrator.common.consumer import Consumer
from orchestrator.common.db import connect, migrate
from orchestrator.common.events import ensure_stream, new_envelope
from orchestrator.common.outbox import OutboxRelay
from orchestrator.common.pull import fetch_ready
from orchestrator.common.runtime import connect_nats
from orchestrator.common.settings import Settings
from orchestrator.common.stack import NatsServer, pick_free_port
from tests.support.mesh import wait_until

pytestmark = pytest.mark.timeout(90)


async def _schema(pool: asyncpg.Pool) -> str:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    await migrate(pool, schema, "orchestrator.session.migrations")
    return schema


def _event(aggregate_id: str, version: int) -> events_pb2.Event:
    return new_envelope(
        event_type="session.usage_recorded",
        source="test",
        aggregate_type="session",
        aggregate_id=aggregate_id,
        aggregate_version=version,
        session_id=aggregate_id,
        occurred_at=datetime.now(UTC),
        trace_context={},
    )


async def _write(pool: asyncpg.Pool, schema: str, events: list[events_pb2.Event]) -> None:
    for event in events:
        async with pool.acquire() as conn, conn.transaction():
            await outbox.append(conn, schema, event)


async def _read_stream(js: Any, stream: str) -> list[events_pb2.Event]:
    sub = await js.pull_subscribe(
        "orch.>", stream=stream, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    found: list[events_pb2.Event] = []
    try:
        while True:
            found += [events_pb2.Event.FromString(m.data) for m in await sub.fetch(200, timeout=1)]
    except Exception:  # a fetch that times out: the stream has nothing more
        pass
    await sub.unsubscribe()
    return found


@pytest.fixture
async def private_nats() -> AsyncIterator[tuple[Path, int]]:
    """A NATS server only this test uses, so the test may stop and restart it."""
    data_dir = Path(tempfile.mkdtemp(prefix="orch-nats-"))
    yield data_dir, pick_free_port()
    shutil.rmtree(data_dir, ignore_errors=True)


async def test_relay_survives_nats_restart_and_publishes_each_event_once_in_order(
    pool: asyncpg.Pool, settings: Settings, private_nats: tuple[Path, int]
) -> None:
    data_dir, port = private_nats
    server = NatsServer(data_dir, port)
    await server.start()
    nc = await connect_nats(server.url, name="relay-test")
    js = nc.jetstream()
    await ensure_stream(js, "RELAYTEST", max_age_seconds=3600, max_bytes=64 << 20)
    schema = await _schema(pool)
    dsn = str(settings.database_url)
    relay = OutboxRelay(
        lambda: connect(dsn), js, schema, batch_size=16, publish_timeout=1.0, idle_poll_seconds=0.2
    )
    relay.start()
    aggregates = [str(uuid.uuid4()) for _ in range(3)]
    before = [_event(a, v) for v in range(1, 11) for a in aggregates]
    after = [_event(a, v) for v in range(11, 21) for a in aggregates]
    try:
        await _write(pool, schema, before[:15])
        await server.stop()
        # Written while NATS is down: they wait in the outbox.
        await _write(pool, schema, before[15:] + after)
        await asyncio.sleep(1.5)
        server = NatsServer(data_dir, port)
        await server.start()

        async def drained() -> bool:
            return bool(await pool.fetchval(f"SELECT count(*) FROM {schema}.outbox") == 0)

        await wait_until(drained, within=45, what="the outbox to drain after NATS came back")
        stored = await _read_stream(js, "RELAYTEST")
    finally:
        await relay.stop()
        await nc.close()
        await server.stop()

    ids = [e.event_id for e in stored]
    assert len(ids) == 60 and set(ids) == {e.event_id for e in before + after}
    versions: dict[str, list[int]] = defaultdict(list)
    for event in stored:
        versions[event.aggregate_id].append(event.aggregate_version)
    assert all(v == list(range(1, 21)) for v in versions.values()), versions


async def _event_stream(settings: Settings, name: str) -> tuple[Any, Any]:
    """A NATS connection named `name` and its JetStream context, the mesh's stream declared."""
    nc = await connect_nats(str(settings.nats_url), name=name)
    js = nc.jetstream()
    await ensure_stream(
        js,
        settings.stream_name,
        max_age_seconds=settings.stream_max_age_seconds,
        max_bytes=settings.stream_max_bytes,
    )
    return nc, js


async def test_consumer_handles_each_event_id_once_and_retries_failures(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    nc, js = await _event_stream(settings, "consumer-test")
    schema = await _schema(pool)
    await pool.execute(f"CREATE TABLE {schema}.seen (event_id uuid, attempt int)")
    aggregate = str(uuid.uuid4())
    attempts: dict[str, int] = defaultdict(int)

    async def handler(conn: Any, event: events_pb2.Event) -> None:
        attempts[event.event_id] += 1
        await conn.execute(
            f"INSERT INTO {schema}.seen VALUES ($1, $2)", event.event_id, attempts[event.event_id]
        )
        if event.aggregate_version == 2 and attempts[event.event_id] == 1:
            raise RuntimeError("a passing failure: the row above must roll back")

    consumer = Consumer(
        pool,
        js,
        schema=schema,
        stream=settings.stream_name,
        durable=f"test-{uuid.uuid4().hex[:8]}",
        filter_subject=f"orch.session.{aggregate}.>",
        handler=handler,
    )
    await consumer.start()
    events = [_event(aggregate, v) for v in (1, 2, 3)]
    try:
        for event in events:
            subject = f"orch.session.{aggregate}.usage_recorded"
            await js.publish(
                subject, event.SerializeToString(), headers={"Nats-Msg-Id": event.event_id}
            )
        # The same event again under another message id: past the server's de-duplication.
        await js.publish(subject, events[0].SerializeToString(), headers={"Nats-Msg-Id": "other"})

        async def all_handled() -> bool:
            return bool(await pool.fetchval(f"SELECT count(*) FROM {schema}.seen") == 3)

        await wait_until(all_handled, within=30, what="three events handled")
        await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
        await nc.close()
    rows = await pool.fetch(f"SELECT event_id::text, attempt FROM {schema}.seen ORDER BY attempt")
    assert sorted(r["event_id"] for r in rows) == sorted(e.event_id for e in events)
    assert attempts[events[1].event_id] == 2  # failed once, committed on the redelivery
    assert attempts[events[0].event_id] == 1  # the duplicate was skipped by the inbox


async def test_a_fetched_batch_commits_once_and_redelivers_only_what_failed(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    nc, js = await _event_stream(settings, "consumer-batch-test")
    schema = await _schema(pool)
    await pool.execute(f"CREATE TABLE {schema}.seen (event_id uuid, attempt int)")
    aggregate = str(uuid.uuid4())
    attempts: dict[str, int] = defaultdict(int)
    events = [_event(aggregate, v) for v in range(1, 7)]
    flaky = events[2].event_id

    async def handler(conn: Any, event: events_pb2.Event) -> None:
        attempts[event.event_id] += 1
        await conn.execute(
            f"INSERT INTO {schema}.seen VALUES ($1, $2)", event.event_id, attempts[event.event_id]
        )
        if event.event_id == flaky and attempts[flaky] == 1:
            raise RuntimeError("fails once: only its own row rolls back")

    subject = f"orch.session.{aggregate}.usage_recorded"
    # Published before the consumer starts, so its first fetch takes them all at once.
    for event in [*events, events[0]]:
        await js.publish(subject, event.SerializeToString())
    consumer = Consumer(
        pool,
        js,
        schema=schema,
        stream=settings.stream_name,
        durable=f"test-{uuid.uuid4().hex[:8]}",
        filter_subject=f"orch.session.{aggregate}.>",
        handler=handler,
    )
    await consumer.start()
    try:

        async def all_handled() -> bool:
            return bool(await pool.fetchval(f"SELECT count(*) FROM {schema}.seen") == 6)

        await wait_until(all_handled, within=30, what="six events handled")
        await asyncio.sleep(0.3)
    finally:
        await consumer.stop()
        await nc.close()
    rows = await pool.fetch(f"SELECT event_id::text, attempt FROM {schema}.seen")
    assert sorted(r["event_id"] for r in rows) == sorted(e.event_id for e in events)
    assert attempts[flaky] == 2
    # Every other event ran once: its batch's failure did not replay it; the duplicate was
    # skipped.
    assert all(attempts[e.event_id] == 1 for e in events if e.event_id != flaky)
    inbox = await pool.fetchval(f"SELECT count(*) FROM {schema}.inbox")
    assert inbox == 6


async def test_a_batch_handler_takes_a_fetch_at_once_and_falls_back_to_one_by_one(
    pool: asyncpg.Pool,
) -> None:
    schema = await _schema(pool)
    await pool.execute(f"CREATE TABLE {schema}.seen (event_id uuid, how text)")
    aggregate = str(uuid.uuid4())
    events = [_event(aggregate, v) for v in range(1, 5)]
    batches: list[list[str]] = []
    broken = {"batch": False}

    async def one(conn: Any, event: events_pb2.Event) -> None:
        await conn.execute(f"INSERT INTO {schema}.seen VALUES ($1, 'one')", event.event_id)

    async def many(conn: Any, batch: list[events_pb2.Event]) -> None:
        batches.append([e.event_id for e in batch])
        for event in batch:
            await conn.execute(f"INSERT INTO {schema}.seen VALUES ($1, 'many')", event.event_id)
        if broken["batch"]:
            raise RuntimeError("the batch fails: its rows roll back, each event runs alone")

    consumer = Consumer(
        pool,
        None,  # type: ignore[arg-type]  # process_all needs no NATS
        schema=schema,
        stream="unused",
        durable=f"test-{uuid.uuid4().hex[:8]}",
        filter_subject="unused",
        handler=one,
        batch_handler=many,
    )
    # A duplicate within the fetch and a redelivery of an event seen before run once.
    assert await consumer.process_all([*events[:2], events[0]]) == set()
    assert batches == [[events[0].event_id, events[1].event_id]]
    broken["batch"] = True
    assert await consumer.process_all(events) == set()
    assert batches[-1] == [events[2].event_id, events[3].event_id]
    rows = await pool.fetch(f"SELECT event_id::text, how FROM {schema}.seen ORDER BY how")
    expected = [(e.event_id, "many") for e in events[:2]] + [
        (e.event_id, "one") for e in events[2:]
    ]
    assert sorted((r["event_id"], r["how"]) for r in rows) == sorted(expected)
    assert consumer.handled == 4
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.inbox") == 4


async def test_a_lingering_fetch_gathers_what_arrives_meanwhile(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    nc, js = await _event_stream(settings, "test-linger")
    subject = f"orch.test.linger.{uuid.uuid4().hex}"
    sub = await js.pull_subscribe(
        subject,
        durable=f"linger-{uuid.uuid4().hex[:8]}",
        stream=settings.stream_name,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
    )

    async def publish_later(n: int) -> None:
        await asyncio.sleep(0.05)
        for i in range(n):
            await js.publish(subject, f"late {i}".encode())

    try:
        await js.publish(subject, b"first")
        late = asyncio.create_task(publish_later(4))
        # Without lingering, the fetch hands over what is there: the first message alone.
        assert [m.data for m in await fetch_ready(sub, 10, wait=2)] == [b"first"]
        await late
        for m in await fetch_ready(sub, 10, wait=2):
            await m.ack()
        await js.publish(subject, b"second")
        late = asyncio.create_task(publish_later(4))
        # Lingering, the first message waits for those published meanwhile. They are all waiting
        # when the linger ends; the drain that takes them gets more than its 2 ms to read them
        # here, as a loaded machine may not get to them that fast (a production fetch then
        # just hands the rest over with the next batch).
        monkeypatch.setattr(pull, "DRAIN_SECONDS", 0.5)
        msgs = await fetch_ready(sub, 10, wait=2, linger=0.5)
        assert [m.data for m in msgs] == [b"second", *(f"late {i}".encode() for i in range(4))]
        await late
    finally:
        await sub.unsubscribe()
        await nc.close()


async def test_the_stream_is_declared_and_brought_to_its_configuration(
    private_nats: tuple[Path, int],
) -> None:
    # A server of its own: the stream takes every `orch.>` subject, as the mesh's does.
    server = NatsServer(*private_nats)
    await server.start()
    nc = await connect_nats(server.url, name="test-stream-config")
    js = nc.jetstream()
    name = "CONFIGTEST"
    try:
        await ensure_stream(js, name, max_age_seconds=3600, max_bytes=64 << 20, replicas=1)
        await ensure_stream(js, name, max_age_seconds=7200, max_bytes=32 << 20, replicas=1)
        config = (await js.stream_info(name)).config
        assert (config.max_age, config.max_bytes, config.num_replicas) == (7200, 32 << 20, 1)
        # A single server cannot keep three copies: the server's refusal reaches the caller.
        with pytest.raises(Exception, match=r"(?i)replica"):
            await ensure_stream(js, name, max_age_seconds=7200, max_bytes=32 << 20, replicas=3)
    finally:
        await nc.close()
        await server.stop()
