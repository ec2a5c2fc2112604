"""Idempotent, durable event consumption.

A `Consumer` binds to a durable pull consumer (replicas bound to the same durable share the work,
like a queue group). Each message is handled inside a PostgreSQL transaction that first records
its event id in the schema's inbox: a redelivered event finds its id there and is skipped. The
message is acked only after that transaction commits, so a crash in between means a redelivery,
never a loss.

Messages fetched together are handled together, in order, in one transaction (one commit for
the lot), each event in a savepoint of its own: one whose handler fails is rolled back alone,
left out of the inbox and redelivered (nak) without holding the others back.

Each event is handled in the trace its envelope carries (a span when spans are made), with its
session and task ids in the log context; a session event's trace becomes the one this process
continues for that session's work (orchestrator.common.telemetry). How far a consumer lags
(`orch_consumer_pending`) is asked of JetStream every few seconds while metrics are served.

A consumer may also have a batch handler, given all the new events of a fetch at once, so it
can fold many events into one write (a session's counts, an agent's track record). It runs in
one savepoint; should it fail, that is rolled back and the events are handled one by one as
above, so one bad event still cannot hold the others back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from orchestrator.api.events.v1 import events_pb2
from orchestrator.common.db import Conn
from orchestrator.common.logs import session_id_var, task_id_var
from orchestrator.common.metrics import CONSUMER_PENDING, Poller
from orchestrator.common.pull import fetch_ready
from orchestrator.common.telemetry import continued, remember_session_trace

log = logging.getLogger(__name__)

Handler = Callable[[Conn, events_pb2.Event], Awaitable[None]]
BatchHandler = Callable[[Conn, list[events_pb2.Event]], Awaitable[None]]


class Consumer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        js: JetStreamContext,
        *,
        schema: str,
        stream: str,
        durable: str,
        filter_subject: str | Sequence[str],
        handler: Handler,
        batch_handler: BatchHandler | None = None,
        batch: int = 64,
        linger_seconds: float = 0.0,
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
        self._batch_handler = batch_handler
        self._batch = batch
        self._linger = linger_seconds
        self._config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            # Several subjects need NATS 2.10 or later (an older server delivers everything,
            # which handlers skip by event type anyway).
            filter_subject=filter_subject if isinstance(filter_subject, str) else None,
            filter_subjects=None if isinstance(filter_subject, str) else list(filter_subject),
            max_deliver=max_deliver,
            ack_wait=ack_wait_seconds,
        )
        self._task: asyncio.Task[None] | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._lag = Poller(f"pending-{durable}", self._watch_pending)
        self.handled = 0

    async def start(self) -> None:
        # add_consumer with the same durable and config is idempotent on the server.
        await self._js.add_consumer(self._stream, config=self._config)
        self._sub = await self._js.pull_subscribe_bind(self._durable, stream=self._stream)
        self._task = asyncio.create_task(self._run(self._sub), name=f"consumer-{self._durable}")
        self._lag.start()

    async def _watch_pending(self) -> None:
        await watch_pending(self._js, self._stream, self._durable)

    async def stop(self) -> None:
        await self._lag.stop()
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
                msgs = await fetch_ready(sub, self._batch, wait=1.0, linger=self._linger)
            except (NatsTimeoutError, TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("fetch on %s failed: %s", self._durable, exc)
                await asyncio.sleep(0.5)
                continue
            await self._handle_all(msgs)

    async def _handle_all(self, msgs: list[Msg]) -> None:
        events: list[events_pb2.Event | None] = []
        for msg in msgs:
            parsed = events_pb2.Event()
            try:
                parsed.ParseFromString(msg.data)
            except Exception:
                log.error("dropping an undecodable message on %s", msg.subject)
                await msg.term()
                events.append(None)
                continue
            events.append(parsed)
        try:
            failed = await self.process_all([e for e in events if e is not None])
        except Exception:
            log.exception("handling %d on %s failed; redelivered", len(msgs), self._durable)
            for msg, maybe in zip(msgs, events, strict=True):
                if maybe is not None:
                    await msg.nak(delay=1.0)
            return
        for msg, maybe in zip(msgs, events, strict=True):
            if maybe is None:
                continue
            with contextlib.suppress(Exception):  # unacked: redelivered, and skipped then
                if maybe.event_id in failed:
                    await msg.nak(delay=1.0)
                else:
                    await msg.ack()

    async def process_all(self, events: list[events_pb2.Event]) -> set[str]:
        """Handles the events not seen before, in order, in one transaction, each in a
        savepoint of its own: an event whose handler fails is rolled back alone and left out
        of the inbox. Returns the ids of those that failed (to be redelivered). A lone new
        event needs no savepoint: its failure rolls the transaction back and is raised."""
        failed: set[str] = set()
        async with self._pool.acquire() as conn, conn.transaction():
            # Claimed first: a replica handed a redelivery of the same event waits on these
            # rows until this transaction ends, then finds them and skips the event.
            rows = await conn.fetch(
                f"INSERT INTO {self._schema}.inbox (consumer, event_id)"
                " SELECT $1, e FROM unnest($2::uuid[]) AS e ON CONFLICT DO NOTHING"
                " RETURNING event_id::text",
                self._durable,
                list(dict.fromkeys(e.event_id for e in events)),
            )
            # A duplicate within the batch runs once.
            fresh = _first_of_each(events, {r[0] for r in rows})
            if (
                self._batch_handler is not None
                and len(fresh) > 1
                and await self._try_batch(conn, fresh)
            ):
                self.handled += len(fresh)
                return failed
            alone = len(fresh) == 1
            handled: list[str] = []
            for event in fresh:
                if alone:
                    await self._handle(conn, event)
                    handled.append(event.event_id)
                    continue
                try:
                    async with conn.transaction():
                        await self._handle(conn, event)
                except Exception:
                    log.exception(
                        "handling %s %s failed; it will be redelivered",
                        event.type,
                        event.event_id,
                    )
                    failed.add(event.event_id)
                    continue
                handled.append(event.event_id)
            if failed:
                await conn.execute(
                    f"DELETE FROM {self._schema}.inbox WHERE consumer = $1"
                    " AND event_id = ANY($2::uuid[])",
                    self._durable,
                    list(failed),
                )
        self.handled += len(handled)
        return failed

    async def _handle(self, conn: Conn, event: events_pb2.Event) -> None:
        """The handler on one event, in its trace and with its ids in the log context."""
        session = session_id_var.set(event.session_id)
        task = task_id_var.set(event.aggregate_id if event.aggregate_type == "task" else "")
        try:
            with continued(event.trace_context, f"{self._durable} {event.type}"):
                if event.aggregate_type == "session":
                    remember_session_trace(event.session_id or event.aggregate_id)
                await self._handler(conn, event)
        finally:
            task_id_var.reset(task)
            session_id_var.reset(session)

    async def _try_batch(self, conn: Conn, events: list[events_pb2.Event]) -> bool:
        """Runs the batch handler in a savepoint; False (rolled back) when it failed. The batch
        continues the trace of its first event."""
        assert self._batch_handler is not None
        try:
            with continued(events[0].trace_context, f"{self._durable} batch"):
                async with conn.transaction():
                    await self._batch_handler(conn, events)
        except Exception:
            log.exception(
                "handling %d events on %s together failed; one by one instead",
                len(events),
                self._durable,
            )
            return False
        return True


async def watch_pending(js: JetStreamContext, stream: str, durable: str) -> None:
    """Sets `orch_consumer_pending` of a durable consumer from JetStream's count."""
    info = await js.consumer_info(stream, durable)
    CONSUMER_PENDING.labels(durable, stream).set(info.num_pending or 0)


def _first_of_each(events: list[events_pb2.Event], wanted: set[str]) -> list[events_pb2.Event]:
    """The events whose ids are in `wanted`, in order, each id once."""
    seen: set[str] = set()
    out = []
    for event in events:
        if event.event_id in wanted and event.event_id not in seen:
            seen.add(event.event_id)
            out.append(event)
    return out
