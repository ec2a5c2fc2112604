"""Assigns READY leaf tasks of running sessions to agents, most urgent first.

Each tick takes the scheduler lock (a transaction-scoped advisory lock, so one replica schedules
at a time and a crashed one releases it), reads the eligible tasks and calls the AssignTask use
case for each with no agent, which routes through the agent service and reserves its slot. A
task no agent can take stays READY with its reason and is tried again on the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

import asyncpg

from orchestrator.common.errors import FailedPrecondition, NotFound, StaleVersion, Unavailable
from orchestrator.task.routing import NoEligibleAgent
from orchestrator.task.service import TaskService

log = logging.getLogger(__name__)

LOCK_KEY = "orch-task-scheduler"
ACTOR = "scheduler"
RUNNABLE_SESSIONS = ("running", "degraded")

# READY leaves of running sessions whose backoff (if any) has passed; BLOCKER first, then by
# priority, then in creation order.
_ELIGIBLE = """
SELECT t.id::text, t.session_id::text, s.max_parallel_tasks
FROM task.tasks t JOIN task.sessions s ON s.session_id = t.session_id
WHERE t.status = 'ready' AND t.lease_expires_at IS NULL
  AND s.status = ANY($1::text[])
  AND NOT EXISTS (SELECT 1 FROM task.tasks c WHERE c.parent_id = t.id)
  AND (t.body->>'next_attempt_at' IS NULL OR (t.body->>'next_attempt_at')::timestamptz <= $2)
ORDER BY array_position(
    ARRAY['blocker','critical','high','normal','low','background'], t.priority), t.seq
LIMIT $3
"""

_ACTIVE = """
SELECT session_id::text, count(*) FROM task.tasks
WHERE session_id = ANY($1::uuid[]) AND status IN ('assigned', 'in_progress')
GROUP BY session_id
"""


class Scheduler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        service: TaskService,
        *,
        interval_seconds: float = 0.3,
        batch: int = 100,
        lease_seconds: int = 0,
    ) -> None:
        self._pool = pool
        self._service = service
        self._interval = interval_seconds
        self._batch = batch
        self._lease_seconds = lease_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
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

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduling failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)

    async def tick(self) -> int:
        """One pass; returns how many tasks were assigned (0 when another replica holds the
        scheduler lock)."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext($1))", LOCK_KEY):
                return 0
            now = self._service.now()
            rows = await conn.fetch(_ELIGIBLE, list(RUNNABLE_SESSIONS), now, self._batch)
            if not rows:
                return 0
            sessions = list({r["session_id"] for r in rows})
            active: Counter[str] = Counter(
                {r["session_id"]: int(r["count"]) for r in await conn.fetch(_ACTIVE, sessions)}
            )
            assigned = 0
            for row in rows:
                session_id, limit = row["session_id"], int(row["max_parallel_tasks"])
                if limit and active[session_id] >= limit:
                    continue
                try:
                    if await self._assign(row["id"]):
                        active[session_id] += 1
                        assigned += 1
                except Unavailable as exc:
                    log.warning("routing is unavailable; scheduling waits: %s", exc)
                    break
        self.assigned += assigned
        return assigned

    async def _assign(self, task_id: str) -> bool:
        try:
            await self._service.assign(task_id, None, "", self._lease_seconds, ACTOR)
        except NoEligibleAgent:
            return False  # Stays READY with the reason; tried again next tick.
        except (FailedPrecondition, StaleVersion, NotFound) as exc:
            log.debug("task %s not assigned: %s", task_id, exc)
            return False
        return True
