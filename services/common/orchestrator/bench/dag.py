"""The headline: a DAG of 1,000 no-op tasks (100 chains of 10) run by a session on 8 worker slots.

Setup, per run: a session whose root task is planned ahead through the task API (the root's id
derives from the session's, so StartSession finds it and does not decompose), with 1,000
subtasks in 100 chains of 10 (finish-to-start). Two `orch agent run --executor noop` workers of
4 slots each take the work: the no-op executor does nothing and succeeds, so what is measured is
the orchestration alone — routing, assignment with lease and fencing token, delivery through
JetStream, start, completion, dependants made READY, session progress — with every transition
committed to PostgreSQL and published to JetStream.

Printed beside it, measured in the same run on the same servers: JetStream publish with ack,
a PostgreSQL single-row commit, and a grpc.aio echo — the raw ceilings of the parts it is built
from. Memory (PSS) of the task service and the workers before and after each of three runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

import asyncpg
import grpc
from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from orchestrator.api.agent.v1 import agent_pb2, agent_pb2_grpc
from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.session.v1 import session_pb2, session_pb2_grpc
from orchestrator.api.task.v1 import task_pb2, task_pb2_grpc
from orchestrator.bench.echo import METHOD
from orchestrator.bench.load import LoadResult, closed_loop
from orchestrator.bench.memory import cpu_seconds, pss_mb
from orchestrator.common.channels import open_channel
from orchestrator.common.ids import root_task_id
from orchestrator.common.settings import Settings
from orchestrator.common.stack import spawn
from orchestrator.worker.config import agent_id_for

CHAINS = 100
CHAIN_LENGTH = 10
WORKERS = 2
SLOTS_PER_WORKER = 4
# ORCH_AGENT_PREFETCH of the bench's mesh: each agent may hold this many assignments beyond its
# slots, so a worker starts its next task as soon as one ends.
PREFETCH = SLOTS_PER_WORKER
RUNS = 3
# Runs on the mesh of several replicas of every service.
SCALE_OUT_RUNS = 2
TARGET_TASKS_PER_SECOND = 1500
FIRST_MILESTONE = 200
RUN_TIMEOUT_SECONDS = 600.0
# Baselines: as many operations in flight as the mesh could have.
BASELINE_IN_FLIGHT = 64
BASELINE_CALLS = 4000
_DONE = (
    session_pb2.SESSION_STATUS_COMPLETED,
    session_pb2.SESSION_STATUS_PARTIALLY_COMPLETED,
    session_pb2.SESSION_STATUS_FAILED,
    session_pb2.SESSION_STATUS_CANCELLED,
)


@dataclass(frozen=True)
class RunFigures:
    tasks: int
    seconds: float
    # Per task: assigned -> started (delivery and start) and started -> completed (report).
    dispatch_ms: list[float]
    report_ms: list[float]
    # Per chained task: predecessor completed -> this one started (the step between two tasks).
    handoff_ms: list[float]
    ended: str
    session_id: str = ""
    task_ids: tuple[str, ...] = ()

    @property
    def per_second(self) -> float:
        return self.tasks / self.seconds if self.seconds else 0.0


def _cpu_line(cpu: dict[str, float], run: RunFigures) -> str:
    """CPU per task by process group, busiest first, and the machine's share it took."""
    tasks = max(run.tasks, 1)
    total = sum(cpu.values())
    parts = ", ".join(
        f"{name} {seconds / tasks * 1000:.1f}"
        for name, seconds in sorted(cpu.items(), key=lambda kv: -kv[1])
        if seconds > 0
    )
    cores = os.cpu_count() or 1
    busy = total / (run.seconds * cores) if run.seconds else 0.0
    return (
        f"CPU ms per task: {total / tasks * 1000:.1f} in all ({parts}); "
        f"{busy:.0%} of {cores} cores busy"
    )


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def _plan(
    tasks: task_pb2_grpc.TaskServiceAsyncStub,
    session: session_pb2.Session,
    shape: tuple[int, int] = (CHAINS, CHAIN_LENGTH),
) -> list[list[str]]:
    """The root task and its chains (100 of 10 by default), in one CreateTasks call; returns
    the chains' task ids."""
    root = root_task_id(session.id)
    count, length = shape
    chains = [[str(uuid.uuid4()) for _ in range(length)] for _ in range(count)]
    plan = [
        task_pb2.CreateTaskRequest(
            task_id=root, title=session.title, description=session.initial_prompt, actor="bench"
        )
    ]
    for chain_no, chain in enumerate(chains):
        plan += [
            task_pb2.CreateTaskRequest(
                task_id=task_id,
                parent_id=root,
                title=f"chain {chain_no} step {step}",
                depends_on=[chain[step - 1]] if step else [],
                max_attempts=3,
                actor="bench",
            )
            for step, task_id in enumerate(chain)
        ]
    await tasks.CreateTasks(task_pb2.CreateTasksRequest(session_id=session.id, tasks=plan))
    return chains


async def _wait_end(
    sessions: session_pb2_grpc.SessionServiceAsyncStub, session_id: str
) -> session_pb2.Session:
    request = session_pb2.GetSessionRequest(session_id=session_id)
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        session = (await sessions.GetSession(request)).session
        if session.status in _DONE:
            return session
        await asyncio.sleep(0.05)
    raise TimeoutError(f"session {session_id} did not end within {RUN_TIMEOUT_SECONDS:.0f} s")


def _ms(a: object, b: object) -> float:
    from google.protobuf import timestamp_pb2

    assert isinstance(a, timestamp_pb2.Timestamp) and isinstance(b, timestamp_pb2.Timestamp)
    return (b.ToNanoseconds() - a.ToNanoseconds()) / 1e6


async def _figures(
    tasks: task_pb2_grpc.TaskServiceAsyncStub,
    session_id: str,
    chains: list[list[str]],
    seconds: float,
    ended: str,
) -> RunFigures:
    found: dict[str, task_pb2.Task] = {}
    token = ""
    while True:
        reply = await tasks.ListTasks(
            task_pb2.ListTasksRequest(
                session_id=session_id, page=common_pb2.PageRequest(page_size=500, page_token=token)
            )
        )
        for task in reply.tasks:
            found[task.id] = task
        token = reply.page.next_page_token
        if not token:
            break
    dispatch, report, handoff = [], [], []
    for chain in chains:
        for step, task_id in enumerate(chain):
            task = found[task_id]
            if task.status != task_pb2.TASK_STATUS_COMPLETED:
                continue
            dispatch.append(_ms(task.assigned_at, task.started_at))
            report.append(_ms(task.started_at, task.completed_at))
            if step:
                handoff.append(_ms(found[chain[step - 1]].completed_at, task.started_at))
    done = sum(1 for c in chains for t in c if found[t].status == task_pb2.TASK_STATUS_COMPLETED)
    ids = tuple(t for c in chains for t in c)
    return RunFigures(done, seconds, dispatch, report, handoff, ended, session_id, ids)


# The events every task of the DAG goes through once, in this order, when nothing goes wrong.
LIFECYCLE = ("task.created", "task.ready", "task.assigned", "task.started", "task.completed")


@dataclass(frozen=True)
class Audit:
    """What the stream says of a run's tasks."""

    tasks: int
    # Tasks that started more than once (a run executed twice) / completed more than once.
    started_twice: int
    completed_twice: int
    # Tasks missing one of their lifecycle events on the stream (an event lost).
    incomplete: int
    events: int

    @property
    def clean(self) -> bool:
        return not (self.started_twice or self.completed_twice or self.incomplete)

    def line(self) -> str:
        if self.clean:
            return (
                f"exactly once: each of {self.tasks:,} tasks started once and completed once, "
                f"all {len(LIFECYCLE)} lifecycle events of each on the stream "
                f"({self.events:,} task events read back)"
            )
        return (
            f"NOT exactly once: {self.started_twice} tasks started twice, "
            f"{self.completed_twice} completed twice, {self.incomplete} missing a lifecycle "
            f"event ({self.events:,} task events read back)"
        )


async def audit_run(nats_url: str, stream: str, run: RunFigures) -> Audit:
    """Reads every event of the run's session back from JetStream and counts, per task, its
    lifecycle events: one `task.started` and one `task.completed` each means nothing ran
    twice; all of them present means no event was lost."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    nc = NATS()
    await nc.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream, subjects_filter=f"orch.task.{run.session_id}.>")
        expected = sum((info.state.subjects or {}).values())
        sub = await js.pull_subscribe(
            f"orch.task.{run.session_id}.>",
            stream=stream,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
        )
        read = 0
        try:
            while read < expected:
                try:
                    msgs = await sub.fetch(1000, timeout=2)
                except NatsTimeoutError:
                    break
                for msg in msgs:
                    event = events_pb2.Event.FromString(msg.data)
                    counts[event.aggregate_id][event.type] += 1
                read += len(msgs)
        finally:
            await sub.unsubscribe()
    finally:
        await nc.close()
    wanted = [counts[t] for t in run.task_ids]
    return Audit(
        tasks=len(run.task_ids),
        started_twice=sum(1 for c in wanted if c["task.started"] > 1),
        completed_twice=sum(1 for c in wanted if c["task.completed"] > 1),
        incomplete=sum(1 for c in wanted if any(c[kind] < 1 for kind in LIFECYCLE)),
        events=read,
    )


async def run_dag(
    sessions: session_pb2_grpc.SessionServiceAsyncStub,
    tasks: task_pb2_grpc.TaskServiceAsyncStub,
    number: int,
    shape: tuple[int, int] = (CHAINS, CHAIN_LENGTH),
    started: Callable[[], Awaitable[object]] | None = None,
    on_end: Callable[[], object] | None = None,
) -> RunFigures:
    """One session of `shape` (chains, length) run to its end; `started` is awaited once
    the session has started (a test's fault, say), `on_end` called once it ended, before its
    figures are read back."""
    count, length = shape
    created = await sessions.CreateSession(
        session_pb2.CreateSessionRequest(
            title=f"IND-DAG-{number}",
            initial_prompt=f"{count * length:,} no-op tasks in {count} chains of {length}",
            agent_config={"max_depth": "0"},
            tags=["bench"],
        )
    )
    session = created.session
    chains = await _plan(tasks, session, shape)
    began = time.perf_counter()
    await sessions.StartSession(session_pb2.StartSessionRequest(session_id=session.id))
    if started is not None:
        await started()
    final = await _wait_end(sessions, session.id)
    seconds = time.perf_counter() - began
    if on_end is not None:
        on_end()
    ended = session_pb2.SessionStatus.Name(final.status).removeprefix("SESSION_STATUS_")
    return await _figures(tasks, session.id, chains, seconds, ended.lower())


class Workers:
    """The benchmark's agent workers, as separate processes (`orch agent run`)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = {**os.environ, **env}
        self.procs: list[asyncio.subprocess.Process] = []
        self.names = [f"AGENT-DAG-{n}" for n in range(1, WORKERS + 1)]

    async def __aenter__(self) -> Workers:
        for name in self.names:
            # spawn: the workers die with the benchmark, however it ends.
            proc = await spawn(
                [sys.executable, "-m", "orchestrator.cli.main", "agent", "run", "--name", name,
                 "--executor", "noop", "--max-tasks", str(SLOTS_PER_WORKER)],
                output=asyncio.subprocess.DEVNULL,
                env=self._env,
            )  # fmt: skip
            self.procs.append(proc)
        return self

    async def wait_online(self, agents: agent_pb2_grpc.AgentServiceAsyncStub) -> None:
        deadline = time.monotonic() + 60
        for name in self.names:
            request = agent_pb2.GetAgentRequest(agent_id=agent_id_for(name))
            while True:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    agent = (await agents.GetAgent(request)).agent
                    if agent.status in (agent_pb2.AGENT_STATUS_IDLE, agent_pb2.AGENT_STATUS_BUSY):
                        break
                if time.monotonic() > deadline or any(p.returncode is not None for p in self.procs):
                    raise RuntimeError(f"worker {name} did not come online")
                await asyncio.sleep(0.1)

    async def __aexit__(self, *exc: object) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.returncode is None]


async def _jetstream_baseline(nats_url: str) -> LoadResult:
    nc = NATS()
    await nc.connect(nats_url)
    try:
        js = nc.jetstream()
        stream = f"BENCH_{uuid.uuid4().hex[:8]}"
        await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
        payload = b"x" * 300
        try:
            return await closed_loop(
                lambda: js.publish(f"{stream.lower()}.x", payload),
                BASELINE_CALLS,
                BASELINE_IN_FLIGHT,
            )
        finally:
            await js.delete_stream(stream)
    finally:
        await nc.close()


async def _postgres_baseline(database_url: str) -> LoadResult:
    pool = await asyncpg.create_pool(database_url, min_size=8, max_size=8)
    assert pool is not None
    try:
        table = f"bench_commit_{uuid.uuid4().hex[:8]}"
        await pool.execute(f"CREATE UNLOGGED TABLE IF NOT EXISTS {table} (id bigint)")
        await pool.execute(f"DROP TABLE {table}")
        await pool.execute(f"CREATE TABLE {table} (id bigserial PRIMARY KEY, body text)")

        async def commit() -> None:
            await pool.execute(f"INSERT INTO {table} (body) VALUES ($1)", "x" * 300)

        try:
            return await closed_loop(commit, BASELINE_CALLS, 8)
        finally:
            await pool.execute(f"DROP TABLE {table}")
    finally:
        await pool.close()


async def _echo_baseline(address: str) -> LoadResult:
    async with grpc.aio.insecure_channel(address) as channel:
        echo: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(METHOD)
        await echo(b"x")
        return await closed_loop(lambda: echo(b"x" * 200), BASELINE_CALLS, BASELINE_IN_FLIGHT)


async def bench_dag(
    env: Mapping[str, str],
    echo_addr: str,
    task_service_pids: Callable[[], list[int]],
    mesh_pids: Callable[[], dict[str, list[int]]],
) -> tuple[list[str], list[float]]:
    """The headline on a mesh of one replica per service, beside the raw ceilings; returns the
    lines to print and each run's tasks/s."""
    lines = [
        f"{CHAINS * CHAIN_LENGTH:,} no-op tasks ({CHAINS} chains of {CHAIN_LENGTH}), "
        f"{WORKERS} workers x {SLOTS_PER_WORKER} slots (+{PREFETCH} queued per agent), executor "
        "noop (does nothing, succeeds); every transition committed and published",
    ]
    jetstream = await _jetstream_baseline(env["ORCH_NATS_URL"])
    postgres = await _postgres_baseline(env["ORCH_DATABASE_URL"])
    echo = await _echo_baseline(echo_addr)
    lines += [
        "baselines, same run:",
        "  " + jetstream.line(f"JetStream publish+ack ({BASELINE_IN_FLIGHT} in flight)"),
        "  " + postgres.line("PostgreSQL 1-row commit (8 conns)"),
        "  " + echo.line(f"grpc.aio echo ({BASELINE_IN_FLIGHT} in flight)"),
    ]
    runs, rates, memory = await measure_runs(env, task_service_pids, mesh_pids, RUNS)
    lines += runs
    best = max(rates)
    lines += [
        f"best {best:.0f} tasks/s (median {statistics.median(rates):.0f}); first milestone "
        f"{FIRST_MILESTONE}: {'met' if best >= FIRST_MILESTONE else 'NOT MET'}; target "
        f"{TARGET_TASKS_PER_SECOND:,}: {'met' if best >= TARGET_TASKS_PER_SECOND else 'NOT MET'}",
        f"  tasks/s vs ceilings: {best / jetstream.per_second:.1%} of JetStream publishes/s, "
        f"{best / postgres.per_second:.1%} of PostgreSQL commits/s, "
        f"{best / echo.per_second:.1%} of echo calls/s",
        memory,
    ]
    return lines, rates


async def bench_scale_out(
    env: Mapping[str, str],
    replicas: int,
    task_service_pids: Callable[[], list[int]],
    mesh_pids: Callable[[], dict[str, list[int]]],
    single: list[float],
) -> list[str]:
    """The same DAG on a mesh of `replicas` replicas of every service, and the comparison
    with the one-replica runs (`single`, tasks/s) measured before it."""
    lines, rates, _ = await measure_runs(env, task_service_pids, mesh_pids, SCALE_OUT_RUNS)
    lines.append(
        f"one replica vs {replicas}: best {max(single):.0f} vs {max(rates):.0f} tasks/s, "
        f"median {statistics.median(single):.0f} vs {statistics.median(rates):.0f} "
        f"({statistics.median(rates) / statistics.median(single):.2f}x; both on the same "
        f"{os.cpu_count()} cores: replicas add failover and spread, not cores)"
    )
    return lines


@contextlib.asynccontextmanager
async def dag_clients(
    env: Mapping[str, str],
) -> AsyncIterator[
    tuple[session_pb2_grpc.SessionServiceAsyncStub, task_pb2_grpc.TaskServiceAsyncStub, Workers]
]:
    """Stubs of the session and task services of the mesh `env` names, and its noop workers,
    online."""
    settings = Settings()
    async with (
        open_channel(env["ORCH_SESSION_ADDR"], settings) as s_channel,
        open_channel(env["ORCH_TASK_ADDR"], settings) as t_channel,
        open_channel(env["ORCH_AGENT_ADDR"], settings) as a_channel,
        Workers(env) as workers,
    ):
        await workers.wait_online(agent_pb2_grpc.AgentServiceStub(a_channel))
        yield (
            session_pb2_grpc.SessionServiceStub(s_channel),
            task_pb2_grpc.TaskServiceStub(t_channel),
            workers,
        )


async def measure_runs(
    env: Mapping[str, str],
    task_service_pids: Callable[[], list[int]],
    mesh_pids: Callable[[], dict[str, list[int]]],
    count: int,
) -> tuple[list[str], list[float], str]:
    """`count` runs of the DAG on the mesh `env` names, each audited on the stream; returns the
    lines, the tasks/s of each run and the memory line."""
    settings = Settings()
    lines: list[str] = []
    async with dag_clients(env) as (sessions, tasks, workers):
        rates: list[float] = []
        # Growth is counted from the end of the first run: it warms caches and pools.
        warm_task_mb = warm_worker_mb = 0.0
        for number in range(1, count + 1):
            task_mb, worker_mb = _task_mb(task_service_pids), pss_mb(workers.pids()) / WORKERS

            def groups() -> dict[str, list[int]]:
                return {**mesh_pids(), "workers": workers.pids()}

            cpu_before = cpu_seconds(groups())
            # CPU up to the session's end: reading the figures back is not orchestration.
            cpu_after: dict[str, float] = {}

            def ended(into: dict[str, float] = cpu_after) -> None:
                into.update(cpu_seconds(groups()))

            run = await run_dag(sessions, tasks, number, on_end=ended)
            cpu = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_after.items()}
            after_task_mb = _task_mb(task_service_pids)
            after_worker_mb = pss_mb(workers.pids()) / WORKERS
            audit = await audit_run(env["ORCH_NATS_URL"], settings.stream_name, run)
            rates.append(run.per_second)
            if number == 1:
                warm_task_mb, warm_worker_mb = after_task_mb, after_worker_mb
            lines += [
                f"run {number}: {run.tasks:,} tasks {run.ended} in {run.seconds:.2f} s = "
                f"{run.per_second:.0f} tasks/s",
                f"  per task: assigned->started p50 {_pct(run.dispatch_ms, 50):.1f} ms "
                f"p99 {_pct(run.dispatch_ms, 99):.1f} ms; started->completed p50 "
                f"{_pct(run.report_ms, 50):.1f} ms p99 {_pct(run.report_ms, 99):.1f} ms; "
                f"chain hand-off (completed->next started) p50 {_pct(run.handoff_ms, 50):.1f} ms"
                f" p99 {_pct(run.handoff_ms, 99):.1f} ms",
                f"  slot time per task (wall x slots / tasks): "
                f"{run.seconds * WORKERS * SLOTS_PER_WORKER / max(run.tasks, 1) * 1000:.1f} ms",
                f"  memory PSS MB: task service {task_mb:.0f} -> {after_task_mb:.0f}, "
                f"worker {worker_mb:.0f} -> {after_worker_mb:.0f} (each)",
                "  " + _cpu_line(cpu, run),
                "  " + audit.line(),
            ]
        last_task_mb = _task_mb(task_service_pids)
        last_worker_mb = pss_mb(workers.pids()) / WORKERS
    memory = (
        f"  memory from the end of run 1 to the end of run {count}: task service "
        f"{warm_task_mb:.0f} -> {last_task_mb:.0f} MB ({last_task_mb / warm_task_mb - 1:+.0%}), "
        f"worker {warm_worker_mb:.0f} -> {last_worker_mb:.0f} MB "
        f"({last_worker_mb / warm_worker_mb - 1:+.0%}); target: growth <= 20%, worker < 150 MB"
    )
    return lines, rates, memory


def _task_mb(task_service_pids: Callable[[], list[int]]) -> float:
    """The resident memory (PSS) of a task service process (the mean over its replicas)."""
    pids = task_service_pids()
    return pss_mb(pids) / max(len(pids), 1)
