"""Assigns READY leaf tasks of running sessions to agents, most urgent first.

Each tick takes the scheduler lock (a transaction-scoped advisory lock, so one replica schedules
at a time and a crashed one releases it), reads the eligible tasks and orders them: priority,
then critical path first (the task with the most expected hours of work still hanging on it),
then creation order. Each route goes through the agent service, which reserves the chosen
agent's slot, and the writes meet in the task service's group commit. Tasks that need the same
(capabilities, technologies, complexity, agents to avoid) are routed one after the other; once
no agent can take one, the rest wait for the next tick, READY with the reason, until a slot
frees or an agent joins. Different kinds of work are routed concurrently.

Ticks run when woken — a task became READY or ended, a session changed — or every interval.
A tick that met full agents while work was flowing looks again soon, because slots free as
workers report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import asyncpg

from orchestrator.common.db import Conn
from orchestrator.common.errors import FailedPrecondition, NotFound, StaleVersion, Unavailable
from orchestrator.task.domain import Task, TaskStatus
from orchestrator.task.domain.ranking import remaining_path_hours
from orchestrator.task.routing import NoEligibleAgent
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
# order; `needs` tells apart what routing looks at.
_ELIGIBLE = """
SELECT t.id::text, t.session_id::text, s.max_parallel_tasks, t.seq,
  array_position(ARRAY['blocker','critical','high','normal','low','background'], t.priority)
    AS urgency,
  concat_ws('|', t.body->>'complexity', t.body->>'required_capabilities',
    t.body->>'technologies', t.body->>'failed_agent_ids') AS needs
FROM task.tasks t JOIN task.sessions s ON s.session_id = t.session_id
WHERE t.status = 'ready' AND t.lease_expires_at IS NULL
  AND s.status = ANY($1::text[])
  AND NOT EXISTS (SELECT 1 FROM task.tasks c WHERE c.parent_id = t.id)
  AND (t.body->>'next_attempt_at' IS NULL OR (t.body->>'next_attempt_at')::timestamptz <= $2)
ORDER BY urgency, t.seq
LIMIT $3
"""

_RUNNING = "SELECT count(*) FROM task.tasks WHERE status IN ('assigned', 'in_progress')"

_ACTIVE = """
SELECT session_id::text, count(*) FROM task.tasks
WHERE session_id = ANY($1::uuid[]) AND status IN ('assigned', 'in_progress')
GROUP BY session_id
"""


# Ranks of a session are recomputed when its graph changed: (tasks, dependencies) counts.
_SHAPES = """
SELECT t.session_id::text, count(*) AS tasks,
  (SELECT count(*) FROM task.dependencies d WHERE d.session_id = t.session_id) AS edges
FROM task.tasks t WHERE t.session_id = ANY($1::uuid[]) GROUP BY t.session_id
"""
_HOURS = "SELECT id::text, expected_hours FROM task.tasks WHERE session_id = $1"
_EDGES = (
    "SELECT predecessor_id::text, successor_id::text FROM task.dependencies WHERE session_id = $1"
)
# Routes in flight at once: enough to fill a fleet's free slots in one tick.
CONCURRENCY = 16
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
    needs: str = ""


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


@dataclass
class _Ranks:
    shape: tuple[int, int]
    hours: dict[str, float]


@dataclass
class _Tick:
    assigned: int = 0
    refused: int = 0
    # `needs` that no agent could take in this tick.
    full: set[str] = field(default_factory=set)
    unavailable: bool = False


class Scheduler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        service: TaskService,
        *,
        interval_seconds: float = 0.3,
        batch: int = 500,
        lease_seconds: int = 0,
        max_running: int = 0,
    ) -> None:
        self._pool = pool
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
            flowing = tick.refused and (tick.assigned or woken)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), SOON_SECONDS if flowing else self._interval
                )

    async def tick(self) -> _Tick:
        """One pass; nothing is assigned when another replica holds the scheduler lock."""
        tick = _Tick()
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext($1))", LOCK_KEY):
                return tick
            now = self._service.now()
            rows = await conn.fetch(_ELIGIBLE, list(RUNNABLE_SESSIONS), now, self._batch)
            if not rows:
                return tick
            sessions = list({r["session_id"] for r in rows})
            active: Counter[str] = Counter(
                {r["session_id"]: int(r["count"]) for r in await conn.fetch(_ACTIVE, sessions)}
            )
            ranks = await self._session_ranks(conn, sessions)
            room = await self._global_room(conn)
            candidates = [
                Candidate(
                    task_id=r["id"],
                    session_id=r["session_id"],
                    session_limit=int(r["max_parallel_tasks"]),
                    urgency=int(r["urgency"]),
                    rank=ranks.get(r["id"], 0.0),
                    order=int(r["seq"]),
                    needs=r["needs"],
                )
                for r in rows
            ]
            chosen = choose(candidates, active, room)
            # Tasks that need the same are routed one after the other, most urgent first, and
            # the first refusal ends their turn: the fleet has no slot left for that kind of
            # work, and asking again for each of the others would only cost routes and writes.
            groups: dict[str, list[str]] = {}
            for candidate in chosen:
                groups.setdefault(candidate.needs, []).append(candidate.task_id)
            gate = asyncio.Semaphore(CONCURRENCY)
            # The writes go on while later routes are asked: they meet in one group commit.
            writes: list[asyncio.Task[None]] = []

            async def route_group(needs: str, task_ids: list[str]) -> None:
                async with gate:
                    for task_id in task_ids:
                        if tick.unavailable or needs in tick.full:
                            return
                        agent_id = await self._route(task_id, needs, tick)
                        if agent_id:
                            writes.append(
                                asyncio.create_task(self._assign(task_id, agent_id, tick))
                            )

            await asyncio.gather(*(route_group(n, ids) for n, ids in groups.items()))
            await asyncio.gather(*writes)
        self.assigned += tick.assigned
        return tick

    async def _global_room(self, conn: Conn) -> int | None:
        """How many more tasks may be assigned under the global limit (None: no limit)."""
        if not self._max_running:
            return None
        running = await conn.fetchval(_RUNNING)
        return max(0, self._max_running - int(running))

    async def _session_ranks(self, conn: Conn, sessions: list[str]) -> dict[str, float]:
        """Critical-path ranks of the tasks of `sessions`, recomputed when a graph changed."""
        out: dict[str, float] = {}
        for row in await conn.fetch(_SHAPES, sessions):
            session_id, shape = row["session_id"], (int(row["tasks"]), int(row["edges"]))
            cached = self._ranks.get(session_id)
            if cached is None or cached.shape != shape:
                hours = {r[0]: float(r[1]) for r in await conn.fetch(_HOURS, session_id)}
                edges = [(r[0], r[1]) for r in await conn.fetch(_EDGES, session_id)]
                cached = _Ranks(shape, remaining_path_hours(hours, edges))
                self._ranks[session_id] = cached
            out.update(cached.hours)
        # Sessions that ended leave the cache with their last tick.
        for gone in set(self._ranks) - set(sessions):
            del self._ranks[gone]
        return out

    async def _route(self, task_id: str, needs: str, tick: _Tick) -> str:
        """The agent routing picked (its slot reserved), or "" when there is none."""
        try:
            return await self._service.route(task_id)
        except NoEligibleAgent:
            # Stays READY with the reason; tasks needing the same wait for the next tick.
            tick.full.add(needs)
            tick.refused += 1
        except Unavailable as exc:
            if not tick.unavailable:
                log.warning("routing is unavailable; scheduling waits: %s", exc)
            tick.unavailable = True
        except (FailedPrecondition, StaleVersion, NotFound) as exc:
            log.debug("task %s not routed: %s", task_id, exc)
        return ""

    async def _assign(self, task_id: str, agent_id: str, tick: _Tick) -> None:
        try:
            await self._service.assign(task_id, None, agent_id, self._lease_seconds, ACTOR)
        except (FailedPrecondition, StaleVersion, NotFound) as exc:
            # Changed since it was routed (cancelled, paused); the agent's reservation is
            # released when the worker next reports, or when the task's events say so.
            log.debug("task %s not assigned: %s", task_id, exc)
            return
        tick.assigned += 1
