"""Marks agents whose heartbeat TTL ran out OFFLINE, publishing `agent.offline`.

Every replica runs one, but a Redis lock (SET NX PX, released only by its holder's token) lets
one sweep at a time; and each agent is saved with a version check, so even two sweeps that
overlapped (a lock that expired mid-sweep) mark it once. When Redis has lost its state (a
restart), the sweeper first re-arms the deadlines of every live agent, so none can escape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from orchestrator.agent.presence import Presence
from orchestrator.agent.service import AgentService

log = logging.getLogger(__name__)

LOCK = "offline-sweeper"
BATCH = 500


class OfflineSweeper:
    def __init__(
        self, service: AgentService, presence: Presence, interval_seconds: float = 1.0
    ) -> None:
        self._service = service
        self._presence = presence
        self._interval = interval_seconds
        # Long enough for a sweep of a full batch; short enough that a dead holder's lock
        # delays the next sweep by seconds, not minutes.
        self._lock_ms = max(5_000, int(interval_seconds * 5_000))
        self._task: asyncio.Task[None] | None = None
        self.marked = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="agent-offline-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def sweep_once(self) -> int:
        """Marks the expired agents OFFLINE; 0 when another replica holds the lock."""
        token = uuid.uuid4().hex
        if not await self._presence.lock(LOCK, token, self._lock_ms):
            return 0
        try:
            if await self._presence.needs_rearming():
                await self.reconcile()
            marked = 0
            for agent_id in await self._presence.expired(BATCH):
                if await self._service.expire(agent_id):
                    marked += 1
            self.marked += marked
            return marked
        finally:
            await self._presence.unlock(LOCK, token)

    async def reconcile(self) -> None:
        await self._service.watch_live(await self._service.live_ids())
        await self._presence.rearmed()

    async def _run(self) -> None:
        while True:
            try:
                count = await self.sweep_once()
                if count:
                    log.info("marked %d agents offline", count)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("offline sweep failed; trying again")
            await asyncio.sleep(self._interval)
