"""The floor: the traffic the DAG's tasks must cause, with no orchestration logic at all.

By the spec, each task of the headline DAG has five transitions committed to PostgreSQL with
their events written to an outbox in the same transaction (created, ready, assigned, started,
completed); each event is published to JetStream as its own message with its id as
`Nats-Msg-Id`; the assignment reaches the worker through a durable consumer; the worker starts
and completes the task over a long-lived gRPC stream with its fencing token; and the services
that follow tasks consume their events durably and idempotently, an inbox row per event (the
session's progress reads created, started and completed; the agent's track record, completed).

This module causes exactly that traffic, with the same client libraries (asyncpg, nats-py,
grpc.aio) and the same batching (group commit, events published from memory with their acks in
flight together, consumers that write a fetched batch in one transaction), on the same servers,
and does nothing else: no protobuf envelopes or task snapshots, no validation, state machine,
routing, budgets, tracing or logging. Three processes play the parts: `tasks` (the task
service: plan, scheduler, group commit, relay), `worker` (one per worker, its slots plus a
queue) and `follow` (both followers, in one process). The mesh causes all of this traffic and
does its work besides, so what the floor reaches bounds what the mesh can reach on this
machine's cores; the DAG's figures are printed against it.

`python -m orchestrator.bench.floor tasks|worker|follow ...` runs one part (see `main`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sys
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import asyncpg
import grpc
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from orchestrator.bench.memory import cpu_seconds
from orchestrator.common.pull import fetch_ready
from orchestrator.common.stack import pick_free_port, spawn, tcp_accepts

SCHEMA = "bench_floor"
SUBJECTS = "floor.>"
WORK = "/floor.Tasks/Work"
RUN = "/floor.Tasks/Run"
# Sizes like the real ones: a task's JSON body, and an event (an envelope with a task snapshot:
# 500-710 bytes in the DAG, by event type).
BODY = '{"pad": "' + "x" * 1000 + '"}'
EVENT_BYTES = 700
# The session's progress and the agent's track record, with the events each reads.
FOLLOWERS = {
    "session": ("floor.task.*.created", "floor.task.*.started", "floor.task.*.completed"),
    "agent": ("floor.task.*.completed",),
}
FOLLOW_BATCH = 256
FOLLOW_LINGER_SECONDS = 0.05
# Events whose acks are awaited together.
PUBLISH_IN_FLIGHT = 256
_START, _COMPLETE = b"S", b"C"
# The event a status is entered by, where the names differ.
_EVENT = {"in_progress": "started"}
_OK, _REFUSED = b"\x01", b"\x00"

SCHEMA_SQL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.tasks (
  id uuid PRIMARY KEY, status text NOT NULL, token bigint NOT NULL, body jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS {SCHEMA}.outbox (
  id bigserial PRIMARY KEY, subject text NOT NULL, msg_id uuid NOT NULL, payload bytea NOT NULL);
CREATE TABLE IF NOT EXISTS {SCHEMA}.inbox (
  consumer text NOT NULL, event_id uuid NOT NULL, PRIMARY KEY (consumer, event_id));
CREATE TABLE IF NOT EXISTS {SCHEMA}.progress (consumer text PRIMARY KEY, events bigint NOT NULL);
"""
_PLAN = f"""
WITH t AS (INSERT INTO {SCHEMA}.tasks (id, status, token, body)
  SELECT i, 'pending', 0, $2::jsonb FROM unnest($1::uuid[]) AS i)
INSERT INTO {SCHEMA}.outbox (subject, msg_id, payload)
SELECT * FROM unnest($3::text[], $4::uuid[], $5::bytea[]) RETURNING id
"""
_WRITE = f"""
WITH u AS (UPDATE {SCHEMA}.tasks t SET status = v.status, token = v.token, body = $4::jsonb
  FROM unnest($1::uuid[], $2::text[], $3::int8[]) AS v(id, status, token) WHERE t.id = v.id)
INSERT INTO {SCHEMA}.outbox (subject, msg_id, payload)
SELECT * FROM unnest($5::text[], $6::uuid[], $7::bytea[]) RETURNING id
"""
_FORGET = f"DELETE FROM {SCHEMA}.outbox WHERE id = ANY($1::int8[])"
_INBOX = f"""
WITH n AS (INSERT INTO {SCHEMA}.inbox (consumer, event_id)
  SELECT $1, e FROM unnest($2::uuid[]) AS e ON CONFLICT DO NOTHING RETURNING 1)
INSERT INTO {SCHEMA}.progress AS p (consumer, events) SELECT $1, count(*) FROM n
ON CONFLICT (consumer) DO UPDATE SET events = p.events + excluded.events
"""


def event(task_id: uuid.UUID, token: int) -> bytes:
    """An event's bytes: the task and its token (what a worker needs), padded to size."""
    head = task_id.bytes + token.to_bytes(8, "big")
    return head + b"\x00" * (EVENT_BYTES - len(head))


@dataclass
class _Transition:
    task_id: uuid.UUID
    status: str
    token: int
    subject: str
    done: asyncio.Future[None] | None = None


@dataclass
class _Task:
    status: str = "pending"
    token: int = 0
    worker: str = ""
    after: uuid.UUID | None = None


@dataclass
class _Run:
    left: int
    finished: asyncio.Future[None]
    tasks: dict[uuid.UUID, _Task] = field(default_factory=dict)


class TasksPart:
    """The task service's share: plan, scheduler, group commit and relay."""

    def __init__(
        self, pool: asyncpg.Pool, js: JetStreamContext, capacity: Mapping[str, int]
    ) -> None:
        self._pool = pool
        self._js = js
        self._free = dict(capacity)
        self._ready: deque[uuid.UUID] = deque()
        self._queue: list[_Transition] = []
        self._writing: asyncio.Task[None] | None = None
        self._publishing: set[asyncio.Task[None]] = set()
        self._run: _Run | None = None

    async def plan_and_run(self, chains: int, length: int) -> None:
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        run = self._run = _Run(chains * length, finished)
        heads = []
        for _ in range(chains):
            ids = [uuid.uuid4() for _ in range(length)]
            for before, after in itertools.pairwise(ids):
                run.tasks.setdefault(before, _Task()).after = after
            run.tasks.setdefault(ids[-1], _Task())
            heads.append(ids[0])
        ids = list(run.tasks)
        subjects = [f"floor.task.{i}.created" for i in ids]
        msg_ids = [uuid.uuid4() for _ in ids]
        payloads = [event(i, 0) for i in ids]
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_PLAN, ids, BODY, subjects, msg_ids, payloads)
        self._relay([r[0] for r in rows], subjects, msg_ids, payloads)
        for head in heads:
            self._change(head, "ready")
        await finished
        await asyncio.gather(*self._publishing)

    def _change(self, task_id: uuid.UUID, status: str, worker: str = "") -> _Transition:
        assert self._run is not None
        task = self._run.tasks[task_id]
        task.status = status
        subject = f"floor.task.{task_id}.{_EVENT.get(status, status)}"
        if status == "assigned":
            task.token += 1
            task.worker = worker
            subject += f".{worker}"
        change = _Transition(task_id, status, task.token, subject)
        self._queue.append(change)
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._drain())
        return change

    async def work(self, request: bytes) -> bytes:
        """A worker's start or completion: committed (with what it causes) before the answer."""
        assert self._run is not None
        op, task_id, token = request[:1], uuid.UUID(bytes=request[1:17]), request[17:25]
        task = self._run.tasks.get(task_id)
        wanted = "assigned" if op == _START else "in_progress"
        if task is None or task.status != wanted or task.token != int.from_bytes(token, "big"):
            return request[:17] + _REFUSED
        change = self._change(task_id, "in_progress" if op == _START else "completed")
        change.done = asyncio.get_running_loop().create_future()
        if op == _COMPLETE and task.after is not None:
            self._change(task.after, "ready")
        await change.done
        return request[:17] + _OK

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            subjects = [c.subject for c in batch]
            msg_ids = [uuid.uuid4() for _ in batch]
            payloads = [event(c.task_id, c.token) for c in batch]
            async with self._pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    _WRITE,
                    [c.task_id for c in batch],
                    [c.status for c in batch],
                    [c.token for c in batch],
                    BODY,
                    subjects,
                    msg_ids,
                    payloads,
                )
            self._relay([r[0] for r in rows], subjects, msg_ids, payloads)
            self._committed(batch)

    def _committed(self, batch: list[_Transition]) -> None:
        assert self._run is not None
        run = self._run
        for change in batch:
            if change.status == "ready":
                self._ready.append(change.task_id)
            elif change.status == "completed":
                self._free[run.tasks[change.task_id].worker] += 1
                run.left -= 1
            if change.done is not None:
                change.done.set_result(None)
        self._schedule()
        if run.left == 0 and not run.finished.done():
            run.finished.set_result(None)

    def _schedule(self) -> None:
        while self._ready:
            worker = max(self._free, key=lambda w: self._free[w])
            if not self._free[worker]:
                return
            self._free[worker] -= 1
            self._change(self._ready.popleft(), "assigned", worker)

    def _relay(
        self, ids: list[int], subjects: list[str], msg_ids: list[uuid.UUID], payloads: list[bytes]
    ) -> None:
        """Publishes the committed events from memory, their acks awaited together, then
        forgets them in the outbox (a crash in between leaves them for a sweep to publish)."""

        async def publish() -> None:
            for start in range(0, len(ids), PUBLISH_IN_FLIGHT):
                end = start + PUBLISH_IN_FLIGHT
                await asyncio.gather(
                    *(
                        self._js.publish(s, p, headers={"Nats-Msg-Id": str(m)})
                        for s, m, p in zip(
                            subjects[start:end], msg_ids[start:end], payloads[start:end],
                            strict=True,
                        )
                    )
                )  # fmt: skip
            await self._pool.execute(_FORGET, ids)

        task = asyncio.create_task(publish())
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)


async def serve_tasks(
    address: str, database_url: str, nats_url: str, capacity: Mapping[str, int]
) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=4, max_size=8)
    nc = NATS()
    await nc.connect(nats_url)
    part = TasksPart(pool, nc.jetstream(), capacity)

    async def work(requests: AsyncIterator[bytes], context: object) -> AsyncIterator[bytes]:
        answers: asyncio.Queue[bytes] = asyncio.Queue()

        async def answer(request: bytes) -> None:
            answers.put_nowait(await part.work(request))

        async def read() -> None:
            async with asyncio.TaskGroup() as group:
                async for request in requests:
                    group.create_task(answer(request))

        reader = asyncio.create_task(read())
        try:
            while True:
                yield await answers.get()
        finally:
            reader.cancel()

    async def run(request: bytes, context: object) -> bytes:
        chains, length = (int(n) for n in request.decode().split(","))
        await part.plan_and_run(chains, length)
        return b"done"

    server = grpc.aio.server()
    handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {
        "Work": grpc.stream_stream_rpc_method_handler(work),
        "Run": grpc.unary_unary_rpc_method_handler(run),
    }
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("floor.Tasks", handlers)])
    server.add_insecure_port(address)
    await server.start()
    await server.wait_for_termination()


async def serve_worker(name: str, slots: int, queued: int, address: str, nats_url: str) -> None:
    """A worker: assignments from its durable consumer, held up to `queued` beyond its slots;
    each slot starts a task, runs nothing, and completes it in the background (as the real
    worker's no-op slots do); the assignment is acked after its completion is answered."""
    nc = NATS()
    await nc.connect(nats_url)
    js = nc.jetstream()
    sub = await js.pull_subscribe(
        f"floor.task.*.assigned.{name}",
        durable=f"floor-{name}",
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=-1),
    )
    held: asyncio.Queue[Msg] = asyncio.Queue()
    room = slots + queued
    freed = asyncio.Event()

    def release() -> None:
        nonlocal room
        room += 1
        freed.set()

    async with grpc.aio.insecure_channel(address) as channel:
        work: grpc.aio.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(WORK)
        call = work(wait_for_ready=True)
        waiting: dict[bytes, asyncio.Future[bytes]] = {}
        writing = asyncio.Lock()

        async def ask(request: bytes) -> bytes:
            answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            waiting[request[1:17]] = answer
            async with writing:
                await call.write(request)
            return await answer

        async def read() -> None:
            while isinstance(reply := await call.read(), bytes):
                waiting.pop(reply[1:17]).set_result(reply)

        async def complete(msg: Msg, key: bytes) -> None:
            await ask(_COMPLETE + key)
            await msg.ack()
            release()

        async def slot() -> None:
            while True:
                msg = await held.get()
                key = msg.data[:24]
                if (await ask(_START + key))[-1:] == _OK:
                    asyncio.create_task(complete(msg, key))  # noqa: RUF006 - ends by itself
                else:
                    await msg.ack()
                    release()

        async def fetch() -> None:
            nonlocal room
            while True:
                while not room:
                    freed.clear()
                    await freed.wait()
                try:
                    msgs = await fetch_ready(sub, room, 1.0)
                except (NatsTimeoutError, TimeoutError):
                    continue
                room -= len(msgs)
                for msg in msgs:
                    held.put_nowait(msg)

        async with asyncio.TaskGroup() as group:
            group.create_task(read())
            group.create_task(fetch())
            for _ in range(slots):
                group.create_task(slot())


async def serve_followers(database_url: str, nats_url: str) -> None:
    """Both followers: each fetched batch's events recorded in the inbox, the count they move
    written once, in one transaction, then acked."""
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=4)
    nc = NATS()
    await nc.connect(nats_url)
    js = nc.jetstream()

    async def follow(consumer: str, subjects: Sequence[str]) -> None:
        config = ConsumerConfig(
            durable_name=f"floor-{consumer}",
            ack_policy=AckPolicy.EXPLICIT,
            filter_subjects=list(subjects),
            max_ack_pending=-1,
        )
        await js.add_consumer("FLOOR", config)
        sub = await js.pull_subscribe_bind(f"floor-{consumer}", stream="FLOOR")
        while True:
            try:
                msgs = await fetch_ready(sub, FOLLOW_BATCH, 1.0, FOLLOW_LINGER_SECONDS)
            except (NatsTimeoutError, TimeoutError):
                continue
            ids = [uuid.UUID(m.headers["Nats-Msg-Id"]) for m in msgs if m.headers]
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(_INBOX, consumer, ids)
            for msg in msgs:
                await msg.ack()

    async with asyncio.TaskGroup() as group:
        for consumer, subjects in FOLLOWERS.items():
            group.create_task(follow(consumer, subjects))


async def prepare(database_url: str, nats_url: str) -> None:
    """A fresh schema and stream for the floor's runs."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await conn.execute(SCHEMA_SQL)
    finally:
        await conn.close()
    nc = NATS()
    await nc.connect(nats_url)
    try:
        js = nc.jetstream()
        with contextlib.suppress(Exception):
            await js.delete_stream("FLOOR")
        await js.add_stream(name="FLOOR", subjects=[SUBJECTS])
    finally:
        await nc.close()


async def forget(database_url: str, nats_url: str) -> None:
    """Drops what `prepare` made."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    finally:
        await conn.close()
    nc = NATS()
    await nc.connect(nats_url)
    try:
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream("FLOOR")
    finally:
        await nc.close()


@dataclass(frozen=True)
class FloorAudit:
    tasks: int
    completed: int
    events: int
    followed: dict[str, int]
    outbox: int

    @property
    def clean(self) -> bool:
        return (
            self.completed == self.tasks
            and self.events == 5 * self.tasks
            and self.followed
            == {name: len(subjects) * self.tasks for name, subjects in FOLLOWERS.items()}
            and self.outbox == 0
        )

    def line(self) -> str:
        followed = ", ".join(f"{name} {n:,}" for name, n in self.followed.items())
        verdict = "nothing lost" if self.clean else "MISMATCH"
        return (
            f"audit ({verdict}): {self.completed:,} of {self.tasks:,} tasks completed, "
            f"{self.events:,} events on the stream, inbox rows {followed}, "
            f"{self.outbox} left in the outbox"
        )


class Floor:
    """The three parts as processes on the given servers, in a schema and stream of their own
    (made on entry, dropped on exit)."""

    def __init__(
        self,
        database_url: str,
        nats_url: str,
        *,
        workers: int,
        slots: int,
        queued: int,
        output: int = asyncio.subprocess.DEVNULL,
    ) -> None:
        self._db = database_url
        self._nats = nats_url
        self._names = [f"floor{n}" for n in range(1, workers + 1)]
        self._slots = slots
        self._queued = queued
        self._output = output
        self._address = f"127.0.0.1:{pick_free_port()}"
        self._procs: dict[str, list[asyncio.subprocess.Process]] = {}
        self.tasks = 0

    async def __aenter__(self) -> Floor:
        await prepare(self._db, self._nats)
        capacity = ",".join(f"{name}:{self._slots + self._queued}" for name in self._names)
        parts = {
            "floor tasks": [["tasks", self._address, self._db, self._nats, capacity]],
            "floor followers": [["follow", self._db, self._nats]],
            "floor workers": [
                ["worker", name, str(self._slots), str(self._queued), self._address, self._nats]
                for name in self._names
            ],
        }
        try:
            for group, commands in parts.items():
                self._procs[group] = [
                    await spawn(
                        [sys.executable, "-m", "orchestrator.bench.floor", *command],
                        output=self._output,
                    )
                    for command in commands
                ]
                if group == "floor tasks":  # listening before the workers dial it
                    await self._wait_listening()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        procs = [p for group in self._procs.values() for p in group]
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await forget(self._db, self._nats)

    async def _wait_listening(self) -> None:
        port = int(self._address.rsplit(":", 1)[1])
        for _ in range(300):
            if await tcp_accepts(port):
                return
            self._check_alive()
            await asyncio.sleep(0.1)
        raise RuntimeError("the floor's tasks part did not start")

    def _check_alive(self) -> None:
        for group, procs in self._procs.items():
            for proc in procs:
                if proc.returncode is not None:
                    raise RuntimeError(f"{group} exited with {proc.returncode}")

    def pids(self) -> dict[str, list[int]]:
        return {
            group: [p.pid for p in procs if p.returncode is None]
            for group, procs in self._procs.items()
        }

    async def run(self, chains: int, length: int) -> float:
        """One DAG of `chains` chains of `length` run to its end; its wall seconds."""
        async with grpc.aio.insecure_channel(self._address) as channel:
            began = time.perf_counter()
            run: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(RUN)
            await run(f"{chains},{length}".encode())
            seconds = time.perf_counter() - began
        self.tasks += chains * length
        return seconds

    async def audit(self, within: float = 30.0) -> FloorAudit:
        """What the runs so far left behind, once the followers caught up (or `within` ran out)."""
        wanted = {name: len(subjects) * self.tasks for name, subjects in FOLLOWERS.items()}
        conn = await asyncpg.connect(self._db)
        try:
            deadline = time.monotonic() + within
            while True:
                rows = await conn.fetch(f"SELECT consumer, events FROM {SCHEMA}.progress")
                followed = {name: 0 for name in FOLLOWERS} | {r[0]: int(r[1]) for r in rows}
                outbox = int(await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.outbox"))
                if (followed == wanted and not outbox) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            completed = int(
                await conn.fetchval(
                    f"SELECT count(*) FROM {SCHEMA}.tasks WHERE status = 'completed'"
                )
            )
        finally:
            await conn.close()
        nc = NATS()
        await nc.connect(self._nats)
        try:
            events = (await nc.jetstream().stream_info("FLOOR")).state.messages
        finally:
            await nc.close()
        return FloorAudit(self.tasks, completed, events, followed, outbox)


async def bench_floor(
    database_url: str,
    nats_url: str,
    servers: Callable[[], dict[str, list[int]]],
    shape: tuple[int, int],
    workers: int,
    slots: int,
    queued: int,
    runs: int,
) -> tuple[list[str], list[float]]:
    """`runs` runs of the DAG `shape` (chains, length) on the floor's parts and `servers`
    (their CPU counted too); returns the lines to print and each run's tasks/s."""
    chains, length = shape
    tasks = chains * length
    lines = [
        f"{tasks:,} tasks ({chains} chains of {length}), {workers} workers x {slots} slots "
        f"(+{queued} queued), on the same PostgreSQL and NATS: 5 events per task committed "
        "with their transitions and published one message each, the assignment through a "
        "durable consumer, start and completion on a gRPC stream, 4 inbox-checked deliveries "
        "to followers; nothing else"
    ]
    rates: list[float] = []
    async with Floor(database_url, nats_url, workers=workers, slots=slots, queued=queued) as floor:
        await floor.run(2, 2)  # connections, consumers and caches warm
        for number in range(1, runs + 1):

            def groups() -> dict[str, list[int]]:
                return {**servers(), **floor.pids()}

            before = cpu_seconds(groups())
            seconds = await floor.run(chains, length)
            cpu = {k: v - before.get(k, 0.0) for k, v in cpu_seconds(groups()).items()}
            rates.append(tasks / seconds)
            total = sum(cpu.values())
            parts = ", ".join(
                f"{name} {used / tasks * 1000:.1f}"
                for name, used in sorted(cpu.items(), key=lambda kv: -kv[1])
                if used / tasks >= 0.00005
            )
            cores = os.cpu_count() or 1
            lines += [
                f"run {number}: {tasks:,} tasks in {seconds:.2f} s = {tasks / seconds:.0f} tasks/s",
                f"  CPU ms per task: {total / tasks * 1000:.1f} in all ({parts}); "
                f"{total / (seconds * cores):.0%} of {cores} cores busy; every core busy, "
                f"{cores * tasks / total:.0f} tasks/s at most",
            ]
        lines.append((await floor.audit()).line())
    return lines, rates


def main(argv: Sequence[str]) -> None:
    import uvloop

    part, *args = argv
    if part == "tasks":
        address, database_url, nats_url, workers = args
        capacity = {w: int(n) for w, n in (pair.split(":") for pair in workers.split(","))}
        uvloop.run(serve_tasks(address, database_url, nats_url, capacity))
    elif part == "worker":
        name, slots, queued, address, nats_url = args
        uvloop.run(serve_worker(name, int(slots), int(queued), address, nats_url))
    elif part == "follow":
        database_url, nats_url = args
        uvloop.run(serve_followers(database_url, nats_url))
    else:
        raise SystemExit(f"unknown part {part!r}: tasks, worker or follow")


if __name__ == "__main__":
    main(sys.argv[1:])
