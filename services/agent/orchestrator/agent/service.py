"""Agent use cases. A versioned change is loaded, decided by the domain and saved with its events
in one statement; live facts (liveness, task slots) are changed in Redis by one script each."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from orchestrator.agent.directory import AgentDirectory
from orchestrator.agent.domain import LIVE_STATUSES, Agent, AgentStatus, RunResult, TaskOutcome
from orchestrator.agent.domain.validation import (
    parse_uuid,
    validate_duration,
    validate_member,
    validate_quality,
    validate_task_id,
    validate_task_ids,
)
from orchestrator.agent.presence import Beat, Presence, Slots
from orchestrator.agent.repository import AgentFilter, AgentRepository
from orchestrator.agent.wire import envelopes_of
from orchestrator.common.db import Conn
from orchestrator.common.errors import AlreadyExists, InvalidArgument, NotFound, StaleVersion
from orchestrator.common.paging import Page, page_size

Clock = Callable[[], datetime]
Action = Callable[[Agent, datetime], None]

DEFAULT_HEARTBEAT_TTL_SECONDS = 10
# Heartbeats name no version; one that loses a race with another change reads again.
_STALE_RETRIES = 3
_S = AgentStatus


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ResultReport:
    """One task outcome as RecordTaskResult reports it."""

    task_id: str
    fencing_token: int
    outcome: TaskOutcome
    duration_seconds: float
    quality_score: float | None = None
    actor: str = ""

    def check(self) -> None:
        validate_task_id(self.task_id)
        validate_member(TaskOutcome, self.outcome, "outcome")
        validate_duration(self.duration_seconds)
        validate_quality(self.quality_score)


@dataclass(frozen=True)
class Heartbeat:
    agent: Agent
    ttl_seconds: int
    expires_at: datetime | None


def _check_version(agent: Agent, expected: int | None) -> None:
    if expected is not None and expected != agent.version:
        raise StaleVersion("agent", agent.id, expected, agent.version)


class AgentService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        presence: Presence,
        directory: AgentDirectory,
        *,
        repo: AgentRepository | None = None,
        clock: Clock = utc_now,
        heartbeat_ttl_seconds: int = DEFAULT_HEARTBEAT_TTL_SECONDS,
    ) -> None:
        self._pool = pool
        self._presence = presence
        self._directory = directory
        self._repo = repo or AgentRepository()
        self._clock = clock
        self.ttl_seconds = heartbeat_ttl_seconds
        self._ttl_ms = heartbeat_ttl_seconds * 1000

    def now(self) -> datetime:
        return self._clock()

    async def register(self, **fields: Any) -> Agent:
        agent = Agent.create(now=self._clock(), **fields)
        async with self._pool.acquire() as conn:
            if not await self._repo.insert(conn, agent, envelopes_of(agent)):
                return await self._registered_before(conn, agent)
        # Liveness from the start: a worker that never heart-beats goes OFFLINE after the TTL.
        await self._presence.arm(agent.id, self._ttl_ms)
        self._directory.put(agent)
        return agent

    async def _registered_before(self, conn: Conn, wanted: Agent) -> Agent:
        """A worker registering again with the same id and body gets its agent back."""
        try:
            existing: Agent | None = await self._repo.get(conn, wanted.id)
        except NotFound:
            existing = None
        if existing is not None:
            if existing.status is not _S.DEREGISTERED and existing.same_registration(wanted):
                return await self._with_live_facts(existing)
            raise AlreadyExists(
                f"agent {wanted.id} already exists ({existing.status}) with another "
                "registration; use a new agent_id",
                field="agent_id",
            )
        holder = await self._repo.by_name(conn, wanted.name)
        raise AlreadyExists(
            f"name {wanted.name} is taken by agent {holder.id} ({holder.status}); choose "
            "another name or deregister that agent first",
            field="name",
        )

    async def get(self, agent_id: str) -> Agent:
        ident = parse_uuid(agent_id, "agent_id")
        async with self._pool.acquire() as conn:
            agent = await self._repo.get(conn, ident)
        return await self._with_live_facts(agent)

    async def get_by_name(self, name: str) -> Agent:
        async with self._pool.acquire() as conn:
            agent = await self._repo.by_name(conn, name)
        return await self._with_live_facts(agent)

    async def list_agents(self, f: AgentFilter, size: int, token: str) -> Page[Agent]:
        async with self._pool.acquire() as conn:
            page = await self._repo.page(conn, f, page_size(size), token)
        await self._overlay(*page.items)
        return page

    async def _with_live_facts(self, agent: Agent) -> Agent:
        await self._overlay(agent)
        return agent

    async def _overlay(self, *agents: Agent) -> None:
        """Fills load and last heartbeat from Redis, where they live."""
        facts = await self._presence.live_facts([a.id for a in agents])
        for agent in agents:
            tasks = facts.tasks.get(agent.id, ())
            agent.current_task_ids = () if agent.status is _S.DEREGISTERED else tasks
            agent.last_heartbeat_at = facts.beats.get(agent.id, agent.last_heartbeat_at)

    async def change(self, agent_id: str, expected: int | None, action: Action) -> Agent:
        """Loads, checks the expected version, applies `action`, saves with its events.

        No transaction: the write is one statement guarded by the version read, so a
        concurrent change makes it write nothing and raise StaleVersion — or read again when
        the caller named no version: the service's own writes (track records from task events,
        heartbeats) must not fail a caller who asked for no check.
        """
        ident = parse_uuid(agent_id, "agent_id")
        for attempt in range(_STALE_RETRIES):
            try:
                agent = await self._change_once(ident, expected, action)
            except StaleVersion:
                if expected is not None or attempt + 1 == _STALE_RETRIES:
                    raise
                continue
            self._directory.put(agent)
            return agent
        raise AssertionError("unreachable")  # pragma: no cover

    async def _change_once(self, ident: str, expected: int | None, action: Action) -> Agent:
        now = self._clock()
        async with self._pool.acquire() as conn:
            agent = await self._repo.get(conn, ident)
            _check_version(agent, expected)
            await self._overlay(agent)
            read_version = agent.version
            action(agent, now)
            if agent.version != read_version:
                await self._repo.save(conn, agent, read_version, envelopes_of(agent))
            else:
                await self._repo.append_events(conn, envelopes_of(agent))
        return agent

    async def drain(self, agent_id: str, expected: int | None, reason: str, actor: str) -> Agent:
        return await self.change(
            agent_id, expected, lambda a, now: a.drain(now, reason=reason, actor=actor)
        )

    async def deregister(
        self, agent_id: str, expected: int | None, reason: str, actor: str
    ) -> Agent:
        agent = await self.change(
            agent_id, expected, lambda a, now: a.deregister(now, reason=reason, actor=actor)
        )
        await self._presence.clear(agent.id, forget=True)
        return agent

    async def heartbeat(
        self,
        agent_id: str,
        expected: int | None,
        task_ids: Sequence[str],
        reported: AgentStatus | None,
    ) -> Heartbeat:
        """Refreshes liveness and load. Only a status change touches PostgreSQL with a new
        version; a load change adds an `agent.load_changed` event; a plain refresh neither."""
        ident = parse_uuid(agent_id, "agent_id")
        tasks = validate_task_ids(task_ids, "current_task_ids")
        if reported not in (None, _S.IDLE, _S.BUSY):
            raise InvalidArgument(
                f"status: a worker reports idle or busy (or leaves it unset), not {reported}",
                field="status",
            )
        known = await self._known(ident, expected)
        if known.status is _S.DEREGISTERED:
            return Heartbeat(known, 0, None)
        beat = await self._presence.beat(ident, self._ttl_ms, tasks)
        agent = await self._apply_beat(known, beat, expected, reported)
        return Heartbeat(agent, self.ttl_seconds, beat.at + timedelta(seconds=self.ttl_seconds))

    async def _known(self, ident: str, expected: int | None) -> Agent:
        """This process's copy when it has one, else (or when versions disagree) the stored."""
        agent = self._directory.get(ident)
        if agent is None or (expected is not None and expected != agent.version):
            agent = await self.get(ident)
        _check_version(agent, expected)
        return agent

    async def _apply_beat(
        self, known: Agent, beat: Beat, expected: int | None, reported: AgentStatus | None
    ) -> Agent:
        def apply(agent: Agent, _: datetime) -> None:
            # Redis's clock: it orders load changes across replicas (see AgentDirectory).
            agent.current_task_ids = beat.slots.previous
            agent.heartbeat(beat.at, beat.slots.current, reported)

        self._directory.set_tasks(known.id, beat.slots.current, beat.at)
        if known.heartbeat_target(len(beat.slots.current), reported) is not None:
            return await self.change(known.id, expected, apply)
        apply(known, beat.at)
        if known.events:
            async with self._pool.acquire() as conn:
                await self._repo.append_events(conn, envelopes_of(known))
        return known

    async def record_result(
        self, agent_id: str, expected: int | None, report: ResultReport
    ) -> Agent:
        """Applied once per (task_id, fencing_token); a repeat returns the agent unchanged.
        Without an expected version, a concurrent write (a heartbeat) means reading again."""
        ident = parse_uuid(agent_id, "agent_id")
        report.check()  # before anything is written: the slot is freed ahead of the domain
        for attempt in range(_STALE_RETRIES):
            try:
                return await self._record_once(ident, expected, report)
            except StaleVersion:
                if expected is not None or attempt + 1 == _STALE_RETRIES:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _record_once(self, ident: str, expected: int | None, report: ResultReport) -> Agent:
        async with self._pool.acquire() as conn, conn.transaction():
            agent = await self._repo.get(conn, ident)
            _check_version(agent, expected)
            recorded = await self._record_on(conn, agent, [report])
        if not recorded:
            return await self._with_live_facts(agent)
        return agent

    async def record_runs(
        self, conn: Conn, agent_id: str, reports: Sequence[ResultReport]
    ) -> set[str]:
        """Records runs' outcomes in the caller's transaction (the task events' consumer, which
        learns them from the task service), the agent written once for all; returns the ids of
        the tasks recorded now (not those recorded before; none for an unknown agent). A
        concurrent write (a heartbeat) means reading again."""
        for report in reports:
            report.check()
        try:
            ident = parse_uuid(agent_id, "agent_id")
        except InvalidArgument:
            return set()  # not one of ours: the task was assigned by hand to a made-up id
        for attempt in range(_STALE_RETRIES):
            try:
                agent = await self._repo.get(conn, ident)
            except NotFound:
                return set()
            try:
                # A savepoint: a lost race undoes the claims too, and the next try claims again.
                async with conn.transaction():
                    return {r.task_id for r in await self._record_on(conn, agent, reports)}
            except StaleVersion:
                if attempt + 1 == _STALE_RETRIES:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _record_on(
        self, conn: Conn, agent: Agent, reports: Sequence[ResultReport]
    ) -> list[ResultReport]:
        """Folds the reports not recorded before into `agent` and saves it (when any)."""
        fresh = await self._repo.claim_results(
            conn, agent.id, [(r.task_id, r.fencing_token) for r in reports]
        )
        claimed = []
        for report in reports:  # each run once, should a batch name one twice
            if (key := (report.task_id, report.fencing_token)) in fresh:
                fresh.discard(key)
                claimed.append(report)
        if not claimed:
            return []
        read_version = agent.version
        slots = await self._presence.finish(agent.id, [r.task_id for r in claimed])
        agent.current_task_ids = slots.previous
        runs = [
            RunResult(r.task_id, r.outcome, r.duration_seconds, r.quality_score) for r in claimed
        ]
        agent.record_results(self._clock(), runs, actor=claimed[0].actor)
        agent.current_task_ids = slots.current
        await self._repo.save(conn, agent, read_version, envelopes_of(agent))
        self._directory.put(agent)
        self._directory.set_tasks(agent.id, slots.current, slots.at)
        return claimed

    async def expire(self, agent_id: str) -> bool:
        """Marks one agent whose liveness ran out OFFLINE; False when it need not or lost."""
        async with self._pool.acquire() as conn:
            try:
                agent = await self._repo.get(conn, agent_id)
            except NotFound:
                agent = None
            if agent is None or agent.status not in LIVE_STATUSES:
                await self._presence.clear(agent_id)
                return False
            if await self._presence.is_alive(agent_id):
                return False  # a heartbeat came in since the scan
            await self._overlay(agent)
            read_version = agent.version
            agent.go_offline(self._clock(), reason=_silence(agent), actor="offline-sweeper")
            try:
                await self._repo.save(conn, agent, read_version, envelopes_of(agent))
            except StaleVersion:
                return False
        cleared_at = await self._presence.clear(agent_id)
        self._directory.put(agent)
        self._directory.set_tasks(agent.id, (), cleared_at)
        return True

    async def release_task(self, conn: Conn, task_id: str, happened_at: datetime) -> None:
        """Frees the slot a task reserved when the task service says it left its agent."""
        slots = await self._presence.release(task_id, happened_at)
        if slots is not None:
            await self.publish_load(conn, slots)

    async def publish_load(self, conn: Conn, slots: Slots) -> None:
        """Adds `agent.load_changed` for a change of the agent's task slots, if any."""
        self._directory.set_tasks(slots.agent_id, slots.current, slots.at)
        if not slots.changed:
            return
        # Not held here yet (registered on another replica a moment ago): read it.
        agent = self._directory.get(slots.agent_id) or await self._stored(conn, slots.agent_id)
        if agent is None or agent.status is _S.DEREGISTERED:
            return
        agent.current_task_ids = slots.previous
        agent.report_load(slots.at, slots.current)
        await self._repo.append_events(conn, envelopes_of(agent))

    async def _stored(self, conn: Conn, agent_id: str) -> Agent | None:
        try:
            agent = await self._repo.get(conn, agent_id)
        except NotFound:
            return None
        await self._overlay(agent)
        return agent

    async def watch_live(self, agent_ids: Sequence[str]) -> None:
        await self._presence.watch(agent_ids, self._ttl_ms)

    async def live_ids(self) -> list[str]:
        """Agents expected to heart-beat, i.e. in LIVE_STATUSES."""
        async with self._pool.acquire() as conn:
            return await self._repo.ids_in(conn, [s.value for s in LIVE_STATUSES])


def _silence(agent: Agent) -> str:
    if agent.last_heartbeat_at is None:
        return "no heartbeat within the TTL since registration"
    return f"no heartbeat since {agent.last_heartbeat_at.isoformat()}; its TTL ran out"
