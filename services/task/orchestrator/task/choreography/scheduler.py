"""Assigns READY leaf tasks of running sessions to agents, most urgent first.

One replica schedules at a time: the one holding the scheduler lock, a session-level advisory
lock on a connection of its own, which it keeps while it lives (a crashed replica's connection
ends, and the lock with it; standbys try again each tick). Each tick reads the eligible tasks
on that connection, no transaction needed, and orders them: priority,
then critical path first (the task with the most expected hours of work still hanging on it),
then creation order. Tasks that need the same (capabilities, technologies, complexity, agents to
avoid) share one ranking of the eligible agents, asked of the agent service and cached (see
`routing`); each goes to the best of them with a free slot by this service's own count of
leases, counted once per tick and kept current as the tick assigns. Once every eligible agent
is full, the rest of that kind of work waits for a slot to free; when no agent fits at all, the
tasks wait READY and say why. The writes meet in the task service's group commit.

Ticks run when woken — a task became READY or ended, a session changed — or every interval.
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

import asyncpg

from orchestrator.common.db import Conn
from orchestrator.common.errors import FailedPrecondition, NotFound, StaleVersion, Unavailable
from orchestrator.task.domain import Task, TaskStatus
from orchestrator.task.domain.ranking import remaining_path_hours
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

# READY leaves of running sessions whose backoff (if any) has passed, by priority then creation
# order, with what routing looks at.
_ELIGIBLE = """
SELECT t.id::text, t.session_id::text, s.max_parallel_tasks, t.seq,
  s.token_budget, s.cost_budget_usd,
  array_position(ARRAY['blocker','critical','high','normal','low','background'], t.priority)
    AS urgency,
  t.body->>'complexity' AS complexity,
  t.body->>'required_capabilities' AS required_capabilities,
  t.body->>'technologies' AS technologies,
  t.body->>'failed_agent_ids' AS failed_agent_ids
FROM task.tasks t JOIN task.sessions s ON s.session_id = t.session_id
WHERE t.status = 'ready' AND t.lease_expires_at IS NULL
  AND s.status = ANY($1::text[])
  AND NOT EXISTS (SELECT 1 FROM task.tasks c WHERE c.parent_id = t.id)
  AND (t.body->>'next_attempt_at' IS NULL OR (t.body->>'next_attempt_at')::timestamptz <= $2)
ORDER BY urgency, t.seq
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


async def _within_budget(conn: Conn, rows: list[asyncpg.Record]) -> list[asyncpg.Record]:
    """The rows but those of sessions whose tasks spent a budget: the session service pauses
    such a session as soon as it counts the same usage, and until then nothing more starts."""
    budgets = {
        r["session_id"]: (int(r["token_budget"]), float(r["cost_budget_usd"]))
        for r in rows
        if r["token_budget"] or r["cost_budget_usd"]
    }
    if not budgets:
        return rows
    spent = {
        r["session_id"]
        for r in await conn.fetch(_SPENT, list(budgets))
        if budget_spent(int(r["tokens"]), float(r["cost"]), *budgets[r["session_id"]])
    }
    return [r for r in rows if r["session_id"] not in spent] if spent else rows


def _needs(row: asyncpg.Record, known: dict[tuple[str, ...], Needs]) -> Needs:
    """The row's needs; rows alike share one instance (parsed once per tick)."""
    key = (
        row["complexity"],
        row["required_capabilities"],
        row["technologies"],
        row["failed_agent_ids"],
    )
    needs = known.get(key)
    if needs is None:
        needs = known[key] = Needs.from_json(*key)
    return needs


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
        return self._conn if self._leads else None

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
        rows = await conn.fetch(_ELIGIBLE, list(RUNNABLE_SESSIONS), now, self._batch)
        rows = await _within_budget(conn, rows)
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
        known: dict[tuple[str, ...], Needs] = {}
        candidates = [
            Candidate(
                task_id=r["id"],
                session_id=r["session_id"],
                session_limit=int(r["max_parallel_tasks"]),
                urgency=int(r["urgency"]),
                rank=ranks.get(r["id"], 0.0),
                order=int(r["seq"]),
                needs=_needs(r, known),
            )
            for r in rows
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

    async def _session_ranks(self, conn: Conn, rows: list[asyncpg.Record]) -> dict[str, float]:
        """Critical-path ranks of the candidates' sessions (see RANKS_MAX_AGE_SECONDS)."""
        now = time.monotonic()
        wanted: dict[str, list[str]] = {}
        for row in rows:
            wanted.setdefault(row["session_id"], []).append(row["id"])
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
