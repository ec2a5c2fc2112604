"""Assigns READY leaf tasks of running sessions to agents, most urgent first.

One replica schedules at a time: the one holding the scheduler lock, a session-level advisory
lock on a connection of its own, which it keeps while it lives (a crashed replica's connection
ends, and the lock with it; standbys try again each tick). Each tick reads the eligible tasks
on that connection, no transaction needed (those of sessions whose graphs this replica holds
current, from memory), and orders them: priority,
then critical path first (the task with the most expected hours of work still hanging on it),
then creation order. Tasks that need the same (capabilities, technologies, complexity, agents to
avoid) share one ranking of the eligible agents, asked of the agent service and cached (see
`routing`); each goes to the best of them with a free slot by this service's own count of
leases, counted once per tick and kept current as the tick assigns. Once every eligible agent
is full, the rest of that kind of work waits for a slot to free; when no agent fits at all, the
tasks wait READY and say why. The writes meet in the task service's group commit.

Ticks run when woken — a task became READY or ended, a session changed, any replica wrote
tasks (the outbox's notifications) — or every interval.
A tick that met full agents while work was flowing looks again soon, because slots free as
workers report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from orchestrator.common import outbox
from orchestrator.common.db import LOCAL_BACKENDS, Conn
from orchestrator.common.errors import FailedPrecondition, NotFound, StaleVersion, Unavailable
from orchestrator.task.domain import Task, TaskPriority, TaskStatus
from orchestrator.task.domain.ranking import remaining_path_hours
from orchestrator.task.graphs import Graph
from orchestrator.task.routing import Needs, NoEligibleAgent
from orchestrator.task.service import TaskService

log = logging.getLogger(__name__)

LOCK_KEY = "orch-task-scheduler"
ACTOR = "scheduler"
RUNNABLE_SESSIONS = ("running", "degraded")
# A write that leaves a task in one of these may let the scheduler assign more.
_WAKING = frozenset(
    {
        TaskStatus.READY,
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
        TaskStatus.SKIPPED,
        TaskStatus.PAUSED,
    }
)

# The sessions whose graphs this replica holds, as the scheduler needs them, with their stamps
# (is the cached graph current?), and how many runnable sessions ($2) it does not hold.
_CACHED_SESSIONS = """
SELECT s.session_id::text, s.status, s.max_parallel_tasks, s.token_budget, s.cost_budget_usd,
  st.stamp,
  (SELECT count(*) FROM task.sessions o
   WHERE o.status = ANY($2::text[]) AND o.session_id <> ALL($1::uuid[])) AS others
FROM unnest($1::uuid[]) AS c(id) JOIN task.sessions s ON s.session_id = c.id
LEFT JOIN task.session_stamps st ON st.session_id = c.id
"""

# READY leaves of running sessions whose backoff (if any) has passed, by priority then creation
# order, with what routing looks at; but those of the sessions in $4, read from memory. The
# cheap tests come first, apart (MATERIALIZED): the body's JSON is read only for what is left.
_ELIGIBLE = """
WITH r AS MATERIALIZED (
  SELECT t.id, t.session_id, t.seq, t.priority, t.body, s.max_parallel_tasks, s.token_budget,
    s.cost_budget_usd
  FROM task.tasks t JOIN task.sessions s ON s.session_id = t.session_id
  WHERE t.status = 'ready' AND t.lease_expires_at IS NULL
    AND s.status = ANY($1::text[]) AND t.session_id <> ALL($4::uuid[])
)
SELECT r.id::text, r.session_id::text, r.max_parallel_tasks, r.seq,
  r.token_budget, r.cost_budget_usd,
  array_position(ARRAY['blocker','critical','high','normal','low','background'], r.priority)
    AS urgency,
  r.body->>'complexity' AS complexity,
  r.body->>'required_capabilities' AS required_capabilities,
  r.body->>'technologies' AS technologies,
  r.body->>'failed_agent_ids' AS failed_agent_ids
FROM r
WHERE NOT EXISTS (SELECT 1 FROM task.tasks c WHERE c.parent_id = r.id)
  AND (r.body->>'next_attempt_at' IS NULL OR (r.body->>'next_attempt_at')::timestamptz <= $2)
ORDER BY urgency, r.seq
LIMIT $3
"""

# Every lease by session and agent: the session limits, the agents' loads and the global count
# from one pass over the (few) assigned and running tasks (the partial index tasks_leased).
_LEASED = """
SELECT session_id::text, assigned_agent_id, count(*) FROM task.tasks
WHERE status IN ('assigned', 'in_progress') GROUP BY session_id, assigned_agent_id
"""

# What the tasks of sessions with a budget have spent, counted as the session service counts
# it (orchestrator.session.domain.budget: input, output and reasoning tokens; cost).
_SPENT = """
SELECT session_id::text,
  coalesce(sum((body->'usage'->>'input_tokens')::bigint + (body->'usage'->>'output_tokens')::bigint
    + (body->'usage'->>'reasoning_tokens')::bigint), 0) AS tokens,
  coalesce(sum((body->'usage'->>'cost_usd')::float8), 0) AS cost
FROM task.tasks WHERE session_id = ANY($1::uuid[]) GROUP BY session_id
"""

# A session's critical-path ranks are recomputed when a candidate is missing from them (tasks
# were added) or they are older than this (dependencies changed): they order work, and a few
# seconds' staleness only reorders it.
RANKS_MAX_AGE_SECONDS = 5.0
_HOURS = "SELECT id::text, expected_hours FROM task.tasks WHERE session_id = $1"
_EDGES = (
    "SELECT predecessor_id::text, successor_id::text FROM task.dependencies WHERE session_id = $1"
)
# After a tick that found agents full while work was flowing: look again this soon.
SOON_SECONDS = 0.02


@dataclass(frozen=True)
class Candidate:
    """A READY leaf the scheduler may assign, with what orders and limits it."""

    task_id: str
    session_id: str
    # The session's max parallel tasks; 0 = no limit.
    session_limit: int
    # 1 for BLOCKER … 6 for BACKGROUND.
    urgency: int
    # Expected hours of work still hanging on the task (critical path first).
    rank: float
    # Creation order, the last tie-break.
    order: int
    needs: Needs = field(default_factory=Needs)


def choose(
    candidates: Iterable[Candidate], active: Mapping[str, int], room: int | None
) -> list[Candidate]:
    """The candidates to assign now, most urgent first: priority, then critical path, then
    creation order; no session past its limit (counting `active`, its tasks assigned or
    running), and no more than `room` in all (None: no global limit)."""
    running = Counter(active)
    chosen: list[Candidate] = []
    for candidate in sorted(candidates, key=lambda c: (c.urgency, -c.rank, c.order)):
        if room is not None and len(chosen) >= room:
            break
        limit = candidate.session_limit
        if limit and running[candidate.session_id] >= limit:
            continue
        running[candidate.session_id] += 1
        chosen.append(candidate)
    return chosen


def budget_spent(tokens: int, cost: float, token_budget: int, cost_budget_usd: float) -> bool:
    """Whether spending leaves no room under the budgets (0 = none), as the session service
    decides it before pausing the session."""
    return bool(
        (token_budget and tokens >= token_budget) or (cost_budget_usd and cost >= cost_budget_usd)
    )


_URGENCY = {
    p: n
    for n, p in enumerate(
        (
            TaskPriority.BLOCKER,
            TaskPriority.CRITICAL,
            TaskPriority.HIGH,
            TaskPriority.NORMAL,
            TaskPriority.LOW,
            TaskPriority.BACKGROUND,
        ),
        1,
    )
}


@dataclass(frozen=True, slots=True)
class Eligible:
    """A READY leaf of a running session, as the database or a cached graph tells it."""

    task_id: str
    session_id: str
    session_limit: int
    order: int
    token_budget: int
    cost_budget_usd: float
    urgency: int
    needs: Needs

    @classmethod
    def of_row(cls, row: asyncpg.Record, known: dict[tuple[str, ...], Needs]) -> Eligible:
        """From a row of `_ELIGIBLE`; rows alike share one Needs (parsed once per tick)."""
        key = (
            row["complexity"],
            row["required_capabilities"],
            row["technologies"],
            row["failed_agent_ids"],
        )
        needs = known.get(key)
        if needs is None:
            needs = known[key] = Needs.from_json(*key)
        return cls(
            row["id"],
            row["session_id"],
            int(row["max_parallel_tasks"]),
            int(row["seq"]),
            int(row["token_budget"]),
            float(row["cost_budget_usd"]),
            int(row["urgency"]),
            needs,
        )


def eligible_in(graph: Graph, session: asyncpg.Record, now: datetime) -> list[Eligible]:
    """What `_ELIGIBLE` would return of the session, read from its current cached graph."""
    if session["status"] not in RUNNABLE_SESSIONS:
        return []
    found: list[Eligible] = []
    for ident in graph.ready:
        task = graph.tasks[ident]
        if task.lease_expires_at is not None or task.child_ids:
            continue
        if task.next_attempt_at is not None and task.next_attempt_at > now:
            continue
        found.append(
            Eligible(
                task.id,
                graph.session_id,
                int(session["max_parallel_tasks"]),
                graph.order[ident],
                int(session["token_budget"]),
                float(session["cost_budget_usd"]),
                _URGENCY[task.priority],
                Needs.of(task),
            )
        )
    return found


async def _within_budget(conn: Conn, found: list[Eligible]) -> list[Eligible]:
    """`found` but the tasks of sessions whose tasks spent a budget: the session service pauses
    such a session as soon as it counts the same usage, and until then nothing more starts."""
    budgets = {
        e.session_id: (e.token_budget, e.cost_budget_usd)
        for e in found
        if e.token_budget or e.cost_budget_usd
    }
    if not budgets:
        return found
    spent = {
        r["session_id"]
        for r in await conn.fetch(_SPENT, list(budgets))
        if budget_spent(int(r["tokens"]), float(r["cost"]), *budgets[r["session_id"]])
    }
    return [e for e in found if e.session_id not in spent] if spent else found


@dataclass
class _Ranks:
    # When they were computed (monotonic seconds).
    at: float
    hours: dict[str, float]


@dataclass
class _Tick:
    assigned: int = 0
    # Kinds of work left waiting because every eligible agent was full.
    refused: int = 0
    unavailable: bool = False


class Scheduler:
    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        service: TaskService,
        *,
        interval_seconds: float = 0.3,
        batch: int = 500,
        lease_seconds: int = 0,
        max_running: int = 0,
    ) -> None:
        self._connect = connect
        # The scheduler's own connection, and whether it holds the scheduler lock.
        self._conn: asyncpg.Connection | None = None
        self._leads = False
        self._service = service
        self._interval = interval_seconds
        self._batch = batch
        self._lease_seconds = lease_seconds
        # Tasks assigned or running at once over every session; 0 = no limit.
        self._max_running = max_running
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ranks: dict[str, _Ranks] = {}
        self.assigned = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="task-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._resign()

    async def _resign(self) -> None:
        """Ends the scheduler's connection, and with it the lock: another replica may lead."""
        conn, self._conn, self._leads = self._conn, None, False
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    async def _leading(self) -> asyncpg.Connection | None:
        """The connection holding the scheduler lock; None while another replica holds it
        (the connection stays open, to ask again next tick)."""
        if self._conn is None or self._conn.is_closed():
            await self._resign()
            self._conn = await self._connect()
        if not self._leads:
            self._leads = bool(
                await self._conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", LOCK_KEY)
            )
            if self._leads:
                # Every write of tasks inserts events, which notifies the outbox's channel: a
                # slot freed or a task made READY on another replica wakes the scheduler as
                # this replica's own writes do (those through `on_settled`).
                await self._conn.add_listener(outbox.channel("task"), self._on_notify)
        return self._conn if self._leads else None

    def _on_notify(self, _conn: object, pid: int, *_: object) -> None:
        if pid not in LOCAL_BACKENDS:
            self._wake.set()

    def wake(self) -> None:
        """Runs the next tick now rather than at the end of the interval."""
        self._wake.set()

    def on_settled(self, tasks: Iterable[Task]) -> None:
        """Wakes the scheduler when a write made a task READY or ended one (a slot frees)."""
        if any(t.status in _WAKING for t in tasks):
            self._wake.set()

    async def _run(self) -> None:
        while True:
            woken = self._wake.is_set()
            self._wake.clear()
            tick = _Tick()
            try:
                tick = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduling failed; trying again")
                await self._resign()  # the connection may be what failed
            flowing = tick.refused and (tick.assigned or woken)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), SOON_SECONDS if flowing else self._interval
                )

    async def tick(self) -> _Tick:
        """One pass; nothing is assigned when another replica holds the scheduler lock."""
        tick = _Tick()
        conn = await self._leading()
        if conn is None:
            return tick
        now = self._service.now()
        rows = await _within_budget(conn, await self._eligible(conn, now))
        if not rows:
            return tick
        active: Counter[str] = Counter()
        loads: dict[str, int] = {}
        for session_id, agent_id, count in await conn.fetch(_LEASED):
            active[session_id] += count
            if agent_id:
                loads[agent_id] = loads.get(agent_id, 0) + count
        room = None
        if self._max_running:
            room = max(0, self._max_running - sum(active.values()))
        ranks = await self._session_ranks(conn, rows)
        candidates = [
            Candidate(
                task_id=e.task_id,
                session_id=e.session_id,
                session_limit=e.session_limit,
                urgency=e.urgency,
                rank=ranks.get(e.task_id, 0.0),
                order=e.order,
                needs=e.needs,
            )
            for e in rows
        ]
        chosen = choose(candidates, active, room)
        # Most urgent first within each kind of work; the kinds in the order of their most
        # urgent task.
        groups: dict[Needs, list[str]] = {}
        for candidate in chosen:
            groups.setdefault(candidate.needs, []).append(candidate.task_id)
        # The writes go on while later tasks are placed: they meet in one group commit.
        writes: list[asyncio.Task[None]] = []
        for needs, task_ids in groups.items():
            if tick.unavailable:
                break
            for task_id, agent_id in await self._place(needs, task_ids, loads, tick):
                writes.append(asyncio.create_task(self._assign(task_id, agent_id, tick)))
        await asyncio.gather(*writes)
        self.assigned += tick.assigned
        return tick

    async def _eligible(self, conn: Conn, now: datetime) -> list[Eligible]:
        """The READY leaves `_ELIGIBLE` describes, most urgent first, at most a batch: those of
        sessions whose graph this replica holds current (by stamp) from memory, the rest from
        the database."""
        graphs = self._service.graphs
        held = graphs.held()
        found: list[Eligible] = []
        served: list[str] = []
        # Whether a runnable session is left for the database to tell (unknown: assume so).
        rest = True
        if held:
            sessions = await conn.fetch(_CACHED_SESSIONS, held, list(RUNNABLE_SESSIONS))
            rest = any(s["others"] for s in sessions) or not sessions
            for session in sessions:
                graph = graphs.peek(session["session_id"], session["stamp"])
                if graph is not None:
                    served.append(graph.session_id)
                    found.extend(eligible_in(graph, session, now))
                elif session["status"] in RUNNABLE_SESSIONS:
                    rest = True
        if rest:
            known: dict[tuple[str, ...], Needs] = {}
            rows = await conn.fetch(_ELIGIBLE, list(RUNNABLE_SESSIONS), now, self._batch, served)
            found.extend(Eligible.of_row(r, known) for r in rows)
        found.sort(key=lambda e: (e.urgency, e.order))
        return found[: self._batch]

    async def _session_ranks(self, conn: Conn, rows: list[Eligible]) -> dict[str, float]:
        """Critical-path ranks of the candidates' sessions (see RANKS_MAX_AGE_SECONDS)."""
        now = time.monotonic()
        wanted: dict[str, list[str]] = {}
        for row in rows:
            wanted.setdefault(row.session_id, []).append(row.task_id)
        out: dict[str, float] = {}
        for session_id, task_ids in wanted.items():
            cached = self._ranks.get(session_id)
            if (
                cached is None
                or now - cached.at > RANKS_MAX_AGE_SECONDS
                or any(t not in cached.hours for t in task_ids)
            ):
                hours = {r[0]: float(r[1]) for r in await conn.fetch(_HOURS, session_id)}
                edges = [(r[0], r[1]) for r in await conn.fetch(_EDGES, session_id)]
                cached = _Ranks(now, remaining_path_hours(hours, edges))
                self._ranks[session_id] = cached
            out.update(cached.hours)
        # Sessions with nothing to schedule for a while leave the cache.
        for gone in [s for s, r in self._ranks.items() if now - r.at > RANKS_MAX_AGE_SECONDS]:
            if gone not in wanted:
                del self._ranks[gone]
        return out

    async def _place(
        self, needs: Needs, task_ids: list[str], loads: dict[str, int], tick: _Tick
    ) -> list[tuple[str, str]]:
        """(task, agent) for as many of `task_ids` as free slots allow, in order; `loads` is
        counted up as they are placed."""
        placed: list[tuple[str, str]] = []
        try:
            for task_id in task_ids:
                agent_id = await self._service.choose_agent(needs, loads)
                if agent_id is None:
                    tick.refused += 1  # every eligible agent is full: the rest wait for a slot
                    break
                loads[agent_id] = loads.get(agent_id, 0) + 1
                placed.append((task_id, agent_id))
        except NoEligibleAgent as refusal:
            # No agent fits at all: the tasks stay READY and say why.
            for task_id in task_ids:
                await self._note(task_id, refusal.message)
        except Unavailable as exc:
            if not tick.unavailable:
                log.warning("routing is unavailable; scheduling waits: %s", exc)
            tick.unavailable = True
        return placed

    async def _note(self, task_id: str, reason: str) -> None:
        try:
            await self._service.note_unroutable(task_id, reason)
        except (FailedPrecondition, StaleVersion, NotFound) as exc:
            log.debug("task %s changed meanwhile: %s", task_id, exc)

    async def _assign(self, task_id: str, agent_id: str, tick: _Tick) -> None:
        try:
            await self._service.assign(task_id, None, agent_id, self._lease_seconds, ACTOR)
        except (FailedPrecondition, StaleVersion, NotFound) as exc:
            # Changed since it was read (cancelled, paused): the slot counted for it is only
            # counted in this tick.
            log.debug("task %s not assigned: %s", task_id, exc)
            return
        tick.assigned += 1
