"""Keeps this process's directory in step with the changes every replica makes.

Agent events arrive on a core NATS subscription to `orch.agent.>`: a load change is applied from
the event itself, any other change newer than the copy held is read again from PostgreSQL (in
batches, off the subscription's callback). Core NATS drops messages while disconnected, so a
periodic resync compares versions with PostgreSQL and loads with Redis and mends any gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC

import asyncpg
from google.protobuf.message import DecodeError
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from orchestrator.agent.directory import AgentDirectory
from orchestrator.agent.domain import AgentEventType
from orchestrator.agent.presence import Presence
from orchestrator.agent.repository import AgentRepository
from orchestrator.api.agent.v1 import agent_pb2 as pb
from orchestrator.api.events.v1 import events_pb2

log = logging.getLogger(__name__)

SUBJECT = "orch.agent.>"
RELOAD_BATCH = 500


class DirectoryFollower:
    def __init__(
        self,
        pool: asyncpg.Pool,
        presence: Presence,
        directory: AgentDirectory,
        nc: NATS,
        *,
        repo: AgentRepository | None = None,
        resync_seconds: float = 30.0,
    ) -> None:
        self._pool = pool
        self._presence = presence
        self._directory = directory
        self._nc = nc
        self._repo = repo or AgentRepository()
        self._resync_seconds = resync_seconds
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self._sub: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Subscribes first, then loads everything, so no change falls between the two."""
        self._sub = await self._nc.subscribe(SUBJECT, cb=self._on_message)
        await self.resync()
        self._tasks = [
            asyncio.create_task(self._reload_forever(), name="agent-directory-reload"),
            asyncio.create_task(self._resync_forever(), name="agent-directory-resync"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_message(self, msg: Msg) -> None:
        try:
            event = events_pb2.Event.FromString(msg.data)
        except DecodeError:
            log.warning("undecodable message on %s", msg.subject)
            return
        if event.WhichOneof("payload") != "agent":
            return
        ident, snapshot = event.aggregate_id, event.agent.agent
        if event.type == AgentEventType.LOAD_CHANGED:
            at = event.occurred_at.ToDatetime(tzinfo=UTC)
            self._directory.set_tasks(ident, tuple(snapshot.load.current_task_ids), at)
        elif snapshot.status == pb.AGENT_STATUS_DEREGISTERED:
            self._directory.remove(ident)
        elif event.aggregate_version > (self._directory.version_of(ident) or 0):
            self._pending.add(ident)
            self._wake.set()

    async def _reload_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = list(self._pending), set()
            try:
                await self.reload(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reloading %d agents failed; the next resync mends it", len(batch))

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self._resync_seconds)
            try:
                await self.resync()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("directory resync failed; trying again later")

    async def reload(self, agent_ids: Sequence[str]) -> None:
        for start in range(0, len(agent_ids), RELOAD_BATCH):
            ids = agent_ids[start : start + RELOAD_BATCH]
            async with self._pool.acquire() as conn:
                agents = await self._repo.many(conn, ids)
            facts = await self._presence.live_facts(ids)
            for agent in agents:
                self._directory.put(agent)
                self._directory.set_tasks(agent.id, facts.tasks.get(agent.id, ()), facts.at)

    async def resync(self) -> None:
        """Reads again every agent whose stored version differs from the copy held."""
        async with self._pool.acquire() as conn:
            stored = await self._repo.live_versions(conn)
        held = self._directory.versions()
        for ident in held.keys() - stored.keys():
            # Not live in PostgreSQL any more (deregistered): reload drops it, unless it was
            # registered after the query above, in which case it stays.
            self._pending.add(ident)
        self._wake.set()
        await self.reload([i for i, v in stored.items() if held.get(i) != v])
        loads = await self._presence.all_loads()
        for ident in stored:
            self._directory.set_tasks(ident, loads.tasks.get(ident, ()), loads.at)
