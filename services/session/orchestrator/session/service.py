"""Session use cases: each one loads, asks the domain, saves and queues its events in one
transaction, so a change and its events are written together or not at all."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg

from orchestrator.api.events.v1 import events_pb2
from orchestrator.common.db import Conn
from orchestrator.common.errors import Aborted, AlreadyExists, InvalidArgument, StaleVersion
from orchestrator.common.events import new_envelope
from orchestrator.common.metrics import observe_budget_use
from orchestrator.common.paging import Page, page_size
from orchestrator.common.telemetry import inject_trace_context
from orchestrator.session.domain import Checkpoint, Session, Usage
from orchestrator.session.domain.budget import tokens_counted
from orchestrator.session.repository import SessionFilter, SessionRepository
from orchestrator.session.wire import event_payload, session_to_proto

T = TypeVar("T")
# How often a change without an expected version is tried against concurrent writers.
_CHANGE_ATTEMPTS = 5
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_session_id(value: str, field: str = "session_id") -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError) as exc:
        raise InvalidArgument(f"{field} must be a UUID, got {value!r}", field=field) from exc


async def _retried(expected_version: int | None, once: Callable[[], Awaitable[T]]) -> T:
    """`once` again while a concurrent write beats it, unless the caller named the version it
    expects (then the race is the caller's to settle): the retry decides on the fresh session."""
    for attempt in range(1, _CHANGE_ATTEMPTS + 1):
        try:
            return await once()
        except StaleVersion:
            if expected_version is not None or attempt == _CHANGE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


class SessionService:
    def __init__(
        self, pool: asyncpg.Pool, repo: SessionRepository | None = None, clock: Clock = utc_now
    ) -> None:
        self._pool = pool
        self._repo = repo or SessionRepository()
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    async def create(self, **fields: Any) -> Session:
        now = self._clock()
        session = Session.create(now=now, **fields)
        async with self._pool.acquire() as conn:
            # A parent deleted between this check and the insert stays a valid (soft) reference.
            if session.parent_id and not await self._repo.exists(conn, session.parent_id):
                raise InvalidArgument(
                    f"parent_id {session.parent_id} names no session", field="parent_id"
                )
            if not await self._repo.insert(conn, session, self._events(session, now)):
                existing = await self._repo.get(conn, session.id, include_deleted=True)
                return self._same_create_or_conflict(existing, session)
        return session

    @staticmethod
    def _same_create_or_conflict(existing: Session, wanted: Session) -> Session:
        """A retried create with the same id and body gets the stored session back."""
        same = (existing.title, existing.initial_prompt, existing.created_by) == (
            wanted.title,
            wanted.initial_prompt,
            wanted.created_by,
        )
        if not same or existing.deleted_at is not None:
            raise AlreadyExists(f"session {wanted.id} already exists with other content")
        return existing

    async def get(self, session_id: str) -> Session:
        ident = parse_session_id(session_id)
        async with self._pool.acquire() as conn:
            return await self._repo.get(conn, ident)

    async def list_sessions(self, f: SessionFilter, size: int, token: str) -> Page[Session]:
        async with self._pool.acquire() as conn:
            return await self._repo.page(conn, f, page_size(size), token)

    async def change(
        self,
        session_id: str,
        expected_version: int | None,
        action: Callable[[Session, datetime], T],
    ) -> tuple[Session, T]:
        """Loads, checks the expected version, applies `action`, saves with its events.

        Without `expected_version`, a concurrent write (task progress, say) that wins the race
        makes it try again on the fresh session (see `_retried`).
        """
        ident = parse_session_id(session_id)
        return await _retried(
            expected_version, lambda: self._change_once(ident, expected_version, action)
        )

    async def _change_once(
        self, ident: str, expected_version: int | None, action: Callable[[Session, datetime], T]
    ) -> tuple[Session, T]:
        now = self._clock()
        # No transaction: the write is one statement guarded by the version read, so a
        # concurrent change makes it write nothing and raise StaleVersion.
        async with self._pool.acquire() as conn:
            session = await self._repo.get(conn, ident)
            read_version = session.version
            if expected_version is not None and expected_version != read_version:
                raise StaleVersion("session", ident, expected_version, read_version)
            outcome = action(session, now)
            if session.version != read_version:
                await self._repo.save(conn, session, read_version, self._events(session, now))
        return session, outcome

    async def change_in(
        self, conn: Conn, session_id: str, action: Callable[[Session, datetime], T]
    ) -> tuple[Session, T]:
        """`change` inside the caller's transaction on `conn`: the session's row is locked
        first, and its write and events commit (or roll back) with the caller's other work."""
        ident = parse_session_id(session_id)
        await self._repo.lock(conn, ident)
        session = await self._repo.get(conn, ident)
        read_version = session.version
        outcome = action(session, self._clock())
        if session.version != read_version:
            await self._repo.save(conn, session, read_version, self._events(session, self._clock()))
        return session, outcome

    async def root_completed(self, session_id: str) -> bool:
        """Whether the task events last told that the session's root task completed."""
        ident = parse_session_id(session_id)
        async with self._pool.acquire() as conn:
            status = await conn.fetchval(
                "SELECT root_status FROM session.task_progress WHERE session_id = $1", ident
            )
        return bool(status == "completed")

    async def add_checkpoint(
        self,
        session_id: str,
        expected_version: int | None,
        data: dict[str, Any],
        created_by: str,
        sequence: int,
    ) -> tuple[Session, Checkpoint]:
        def act(s: Session, now: datetime) -> Checkpoint:
            return s.add_checkpoint(now, data, created_by=created_by, sequence=sequence)

        ident = parse_session_id(session_id)
        return await _retried(
            expected_version, lambda: self._add_checkpoint_once(ident, expected_version, act)
        )

    async def _add_checkpoint_once(
        self,
        ident: str,
        expected_version: int | None,
        act: Callable[[Session, datetime], Checkpoint],
    ) -> tuple[Session, Checkpoint]:
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            session = await self._repo.get(conn, ident)
            read_version = session.version
            if expected_version is not None and expected_version != read_version:
                raise StaleVersion("session", ident, expected_version, read_version)
            checkpoint = act(session, now)
            try:
                await self._repo.insert_checkpoint(conn, checkpoint)
            except asyncpg.UniqueViolationError as exc:
                raise Aborted(
                    f"checkpoint {checkpoint.sequence} of session {ident} was just written by "
                    "another caller; re-read the session and try again"
                ) from exc
            await self._repo.save(conn, session, read_version, self._events(session, now))
        return session, checkpoint

    async def list_checkpoints(self, session_id: str, size: int, token: str) -> Page[Checkpoint]:
        ident = parse_session_id(session_id)
        async with self._pool.acquire() as conn:
            await self._repo.get(conn, ident)
            return await self._repo.list_checkpoints(conn, ident, page_size(size), token)

    async def record_usage(
        self, session_id: str, report_id: str, usage: Usage, counts: dict[str, int | None]
    ) -> Session:
        ident = parse_session_id(session_id)
        return await _retried(
            None, lambda: self._record_usage_once(ident, report_id, usage, counts)
        )

    async def _record_usage_once(
        self, ident: str, report_id: str, usage: Usage, counts: dict[str, int | None]
    ) -> Session:
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            session = await self._repo.get(conn, ident)
            if report_id and not await self._repo.claim_usage_report(conn, ident, report_id):
                return session
            read_version = session.version
            session.record_usage(
                now,
                usage=usage,
                tasks_total=counts.get("tasks_total"),
                tasks_completed=counts.get("tasks_completed"),
                tasks_failed=counts.get("tasks_failed"),
                tasks_skipped=counts.get("tasks_skipped"),
            )
            session.pause_if_over_budget(now)
            await self._repo.save(conn, session, read_version, self._events(session, now))
        observe_budget(session)
        return session

    async def expire_overdue(self, limit: int = 100) -> int:
        """Ends sessions past their max duration; safe to run on every replica at once."""
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            ids = await self._repo.overdue(conn, now, limit)
            for ident in ids:
                session = await self._repo.get(conn, ident)
                read_version = session.version
                session.expire(now, actor="timeout-sweeper")
                await self._repo.save(conn, session, read_version, self._events(session, now))
        return len(ids)

    @staticmethod
    def _events(session: Session, now: datetime) -> list[events_pb2.Event]:
        """The envelopes of the session's pending domain events, each with its snapshot."""
        snapshot = session_to_proto(session, now)
        trace = inject_trace_context()
        envelopes = []
        for event in session.pull_events():
            envelope = new_envelope(
                event_type=event.type.value,
                source="session",
                aggregate_type="session",
                aggregate_id=session.id,
                aggregate_version=event.version,
                session_id=session.id,
                occurred_at=event.occurred_at,
                trace_context=trace,
            )
            envelope.session.CopyFrom(event_payload(event, snapshot))
            envelopes.append(envelope)
        return envelopes


def observe_budget(session: Session) -> None:
    """`orch_session_budget_used_ratio`, once usage was recorded (budgeted sessions only)."""
    usage, limits = session.metrics.usage, session.limits
    observe_budget_use(
        tokens_counted(usage), limits.token_budget, usage.cost_usd, limits.cost_budget_usd
    )
