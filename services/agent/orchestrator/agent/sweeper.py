"""Marks agents whose heartbeat TTL ran out OFFLINE, publishing `agent.offline`.

Every replica runs one, but a Redis lock (SET NX PX, released only by its holder's token) lets
one sweep at a time; and each agent is saved with a version check, so even two sweeps that
overlapped (a lock that expired mid-sweep) mark it once. When Redis has lost its state (a
restart), the sweeper first re-arms the deadlines of every live agent, so none can escape.

Silence is believed only when it could have been heard: after a spell without sweeps (Redis
down, or every agent service replica), no heartbeat could land either, so agents get one more
TTL (and 3 s to reconnect) to beat before any is marked OFFLINE; a Redis or agent service
restart does not take every running task off its worker.
"""

from __future__ import annotations

import logging
import uuid

from orchestrator.agent.presence import Presence
from orchestrator.agent.service import AgentService
from orchestrator.common.periodic import Periodic

log = logging.getLogger(__name__)

LOCK = "offline-sweeper"
# What a worker may need, once the agent service answers again, before its next beat lands:
# its channel's reconnect backoff (`common.channels`, 2 s at most) and the call itself.
RECONNECT_MS = 3_000
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
        # No sweep for this long (Redis or every agent service was down): heartbeats could not
        # land either, so lapsed liveness is given one TTL more rather than believed, plus the
        # time workers' channels take to connect again (their backoff is at most 2 s).
        # Sweeps come every interval; this many ms between two is a spell without any.
        self._blind_ms = int(interval_seconds * 2_000) + 500
        self._grace_ms = service.ttl_seconds * 1000 + RECONNECT_MS
        self._job = Periodic(
            "agent-offline-sweeper",
            self.sweep_once,
            interval_seconds,
            done="marked %d agents offline",
        )
        self.marked = 0

    def start(self) -> None:
        self._job.start()

    async def stop(self) -> None:
        await self._job.stop()

    async def sweep_once(self) -> int:
        """Marks the expired agents OFFLINE; 0 when another replica holds the lock."""
        token = uuid.uuid4().hex
        if not await self._presence.lock(LOCK, token, self._lock_ms):
            return 0
        try:
            if await self._presence.needs_rearming():
                await self.reconcile()
            marked = 0
            expiry = await self._presence.expired(BATCH, self._blind_ms, self._grace_ms)
            if expiry.blind_ms:
                spell = "ever" if expiry.blind_ms < 0 else f"for {expiry.blind_ms / 1000:.1f} s"
                log.info(
                    "no sweep %s (Redis or every agent service was down, or just started): "
                    "agents get %.0f s more to heart-beat before any is marked offline",
                    spell,
                    self._grace_ms / 1000,
                )
            for agent_id in expiry.agents:
                if await self._service.expire(agent_id):
                    marked += 1
            self.marked += marked
            return marked
        finally:
            await self._presence.unlock(LOCK, token)

    async def reconcile(self) -> None:
        await self._service.watch_live(await self._service.live_ids())
        await self._presence.rearmed()
