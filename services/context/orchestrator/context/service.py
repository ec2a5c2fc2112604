"""Context use cases: each one loads, asks the domain, and saves the change with its history
and events in one statement, so all of them are written together or not at all."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from orchestrator.api.events.v1 import events_pb2
from orchestrator.common.db import Conn
from orchestrator.common.errors import AlreadyExists, InvalidArgument, NotFound, StaleVersion
from orchestrator.common.events import new_envelope
from orchestrator.common.paging import Page, page_size
from orchestrator.common.telemetry import inject_trace_context
from orchestrator.context.domain import (
    Change,
    Context,
    ContextDiff,
    ContextScope,
    MergeOutcome,
    MergeStrategy,
    Operation,
    WriteLog,
    json_size,
    parse_id,
    parse_path,
    session_of,
    validate_owner,
)
from orchestrator.context.repository import ContextRepository, HistoryFilter, NameTaken
from orchestrator.context.wire import context_to_proto, event_payload

Clock = Callable[[], datetime]

SWEEPER = "expiry-sweeper"


def utc_now() -> datetime:
    return datetime.now(UTC)


def _digest(*parts: Any) -> str:
    """Fingerprint of a create or clone request, to recognise its retries."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_expected(c: Context, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != c.version:
        raise StaleVersion("context", c.id, expected_version, c.version)


class ContextService:
    def __init__(
        self, pool: asyncpg.Pool, repo: ContextRepository | None = None, clock: Clock = utc_now
    ) -> None:
        self._pool = pool
        self._repo = repo or ContextRepository()
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    async def create(
        self,
        *,
        scope: ContextScope,
        owner_id: str = "",
        name: str = "",
        data: dict[str, Any] | None = None,
        ttl_seconds: int = 0,
        actor: str = "",
        context_id: str = "",
    ) -> Context:
        now = self._clock()
        context = Context.create(
            now=now,
            scope=scope,
            owner_id=owner_id,
            name=name,
            data=data,
            ttl_seconds=ttl_seconds,
            created_by=actor,
            context_id=context_id or None,
        )
        digest = _digest("create", scope, context.owner_id, name, context.data, ttl_seconds, actor)
        return await self._insert(context, digest, now)

    async def clone(
        self,
        context_id: str,
        *,
        scope: ContextScope,
        owner_id: str = "",
        name: str = "",
        ttl_seconds: int = 0,
        actor: str = "",
        clone_id: str = "",
    ) -> Context:
        now = self._clock()
        origin = await self.get(context_id)
        clone = origin.clone(
            now,
            scope=scope,
            owner_id=owner_id,
            name=name,
            ttl_seconds=ttl_seconds,
            actor=actor,
            clone_id=clone_id or None,
        )
        digest = _digest("clone", origin.id, scope, clone.owner_id, name, ttl_seconds, actor)
        return await self._insert(clone, digest, now)

    async def _insert(self, context: Context, digest: str, now: datetime) -> Context:
        """Inserts; a retried request (same id, same digest) gets the stored context back. An
        expired context still holding the name (the sweeper has not come by) is expired first."""
        events = self._events(context)
        async with self._pool.acquire() as conn:
            try:
                inserted = await self._repo.insert(conn, context, digest, events)
            except NameTaken:
                if not await self._expire_name_holder(conn, context, now):
                    raise
                inserted = await self._repo.insert(conn, context, digest, events)
            if inserted:
                return context
            if await self._repo.digest(conn, context.id) != digest:
                raise AlreadyExists(f"context {context.id} already exists with other content")
            existing = await self._repo.get(conn, context.id)
        if existing.deleted_at is not None or existing.is_expired(now):
            raise AlreadyExists(
                f"context {context.id} was created by this request before and has since been "
                "deleted or has expired; create it under a new id"
            )
        return existing

    async def _expire_name_holder(self, conn: Conn, wanted: Context, now: datetime) -> bool:
        holder = await self._repo.live_by_name(conn, wanted.scope, wanted.owner_id, wanted.name)
        if holder is None or not holder.is_expired(now):
            return False
        read_version = holder.version
        holder.expire(now, actor=SWEEPER)
        # NotFound: a sweeper expired it meanwhile, which frees the name just the same.
        with contextlib.suppress(NotFound):
            await self._repo.end(conn, holder, read_version, self._events(holder))
        return True

    async def get(self, context_id: str) -> Context:
        async with self._pool.acquire() as conn:
            return await self._visible(conn, parse_id(context_id, "context_id"), self._clock())

    async def read(self, context_id: str, path: str) -> tuple[Context, Any]:
        """The context and the value at `path` (the whole document for the empty path)."""
        context = await self.get(context_id)
        return context, context.value_at(path)

    async def _visible(
        self, conn: Conn, ident: str, now: datetime, *, for_update: bool = False
    ) -> Context:
        context = await self._repo.get(conn, ident, for_update=for_update)
        context.ensure_visible(now)
        return context

    async def list_contexts(
        self, scope: ContextScope, owner_id: str, owned_only: bool, size: int, token: str
    ) -> Page[Context]:
        owner = validate_owner(scope, owner_id)
        async with self._pool.acquire() as conn:
            return await self._repo.page(
                conn, scope, owner, owned_only, self._clock(), page_size(size), token
            )

    async def update(
        self,
        context_id: str,
        expected_version: int | None,
        operations: Sequence[Operation],
        actor: str,
    ) -> tuple[Context, list[Change]]:
        ident = parse_id(context_id, "context_id")
        async with self._writing(ident, expected_version) as (conn, context, now):
            read_version = context.version
            changes = context.update(now, operations, actor=actor)
            if changes:
                events = self._events(context)
                await self._repo.save(conn, context, read_version, changes, events)
        return context, changes

    @contextlib.asynccontextmanager
    async def _writing(
        self, ident: str, expected_version: int | None
    ) -> AsyncIterator[tuple[Conn, Context, datetime]]:
        """The context to change, checked against the expected version.

        With an expected version the write stays optimistic: one guarded statement, and a
        change landing in between makes it ABORTED. Without one the caller wants the write
        applied to whatever is current, so the row is locked for the read and the write and
        concurrent writers queue instead of failing."""
        blind = expected_version is None
        async with contextlib.AsyncExitStack() as stack:
            conn = await stack.enter_async_context(self._pool.acquire())
            if blind:
                await stack.enter_async_context(conn.transaction())
            now = self._clock()
            context = await self._visible(conn, ident, now, for_update=blind)
            _check_expected(context, expected_version)
            yield conn, context, now

    async def diff(self, context_id: str, other_id: str) -> tuple[Context, Context, ContextDiff]:
        first_ident = parse_id(context_id, "context_id")
        other_ident = parse_id(other_id, "other_context_id")
        now = self._clock()
        async with self._pool.acquire() as conn:
            first = await self._visible(conn, first_ident, now)
            other = await self._visible(conn, other_ident, now)
        return first, other, first.diff(other)

    async def merge(
        self,
        source_id: str,
        target_id: str,
        strategy: MergeStrategy,
        expected_version: int | None,
        actor: str,
    ) -> tuple[Context, MergeOutcome]:
        source_ident = parse_id(source_id, "source_context_id")
        target_ident = parse_id(target_id, "target_context_id")
        async with self._writing(target_ident, expected_version) as (conn, target, now):
            same = source_ident == target_ident
            source = target if same else await self._visible(conn, source_ident, now)
            read_version = target.version
            target_log, source_log = await self._write_logs(conn, target, source, strategy)
            outcome = target.merge_from(
                source, strategy, now, actor=actor, target_log=target_log, source_log=source_log
            )
            if outcome.changes:
                moved = outcome.moved_base
                other_base = (source.id, moved) if moved is not None else None
                events = self._events(target)
                await self._repo.save(
                    conn, target, read_version, outcome.changes, events, other_base
                )
        return target, outcome

    async def _write_logs(
        self, conn: Conn, target: Context, source: Context, strategy: MergeStrategy
    ) -> tuple[WriteLog | None, WriteLog | None]:
        """Only LAST_WRITE_WINS reads the histories."""
        if strategy is not MergeStrategy.LAST_WRITE_WINS:
            return None, None
        target_times = await self._repo.write_times(conn, target.id)
        source_times = await self._repo.write_times(conn, source.id)
        return WriteLog(target.created_at, target_times), WriteLog(source.created_at, source_times)

    async def share(
        self,
        context_id: str,
        expected_version: int | None,
        scope: ContextScope,
        owner_id: str,
        actor: str,
    ) -> Context:
        ident = parse_id(context_id, "context_id")
        now = self._clock()
        # The row lock orders concurrent shares, so the limit on shares holds exactly.
        async with self._pool.acquire() as conn, conn.transaction():
            context = await self._visible(conn, ident, now, for_update=True)
            _check_expected(context, expected_version)
            share = context.share(now, scope, owner_id, actor=actor)
            if share is not None:
                await self._repo.insert_share(conn, context.id, share, self._events(context))
        return context

    async def delete(self, context_id: str, expected_version: int | None, actor: str) -> Context:
        ident = parse_id(context_id, "context_id")
        async with self._writing(ident, expected_version) as (conn, context, now):
            read_version = context.version
            context.delete(now, actor=actor)
            await self._repo.end(conn, context, read_version, self._events(context))
        return context

    async def history(
        self, context_id: str, f: HistoryFilter, size: int, token: str
    ) -> Page[Change]:
        """Readable after deletion and expiry too: the history outlives the context."""
        ident = parse_id(context_id, "context_id")
        parse_path(f.path_prefix, "path_prefix")
        if f.after_version < 0:
            raise InvalidArgument("after_version must not be negative", field="after_version")
        async with self._pool.acquire() as conn:
            await self._repo.get(conn, ident)  # NOT_FOUND for an id that never existed
            return await self._repo.history(conn, ident, f, page_size(size), token)

    async def expire_due(self, limit: int = 100) -> int:
        """Expires TEMPORARY contexts past their time; safe to run on every replica at once."""
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            due = await self._repo.due_for_expiry(conn, now, limit)
            for context in due:
                read_version = context.version
                context.expire(now, actor=SWEEPER)
                await self._repo.end(conn, context, read_version, self._events(context))
        return len(due)

    @staticmethod
    def _events(context: Context) -> list[events_pb2.Event]:
        """The envelopes of the context's pending domain events, each with its snapshot."""
        pending = context.pull_events()
        if not pending:
            return []
        snapshot = context_to_proto(context)
        data_bytes = json_size(context.data)
        trace = inject_trace_context()
        envelopes = []
        for event in pending:
            envelope = new_envelope(
                event_type=event.type.value,
                source="context",
                aggregate_type="context",
                aggregate_id=context.id,
                aggregate_version=event.version,
                session_id=session_of(context.scope, context.owner_id),
                occurred_at=event.occurred_at,
                trace_context=trace,
            )
            envelope.context.CopyFrom(event_payload(event, snapshot, data_bytes))
            envelopes.append(envelope)
        return envelopes
