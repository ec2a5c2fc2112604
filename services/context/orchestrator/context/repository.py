"""Contexts, their shares and their history in PostgreSQL (schema `context`).

Every write of a context is one statement: the row guarded by the version it was read at,
its history rows and its outbox events, so all of them are written or none is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from orchestrator.api.events.v1 import events_pb2
from orchestrator.common import outbox
from orchestrator.common.db import Conn
from orchestrator.common.errors import AlreadyExists, InvalidArgument, NotFound, StaleVersion
from orchestrator.common.paging import Page, decode_token, encode_token
from orchestrator.context.domain import Change, Context, ContextScope, Share
from orchestrator.context.records import (
    CHANGE_COLUMNS,
    COLUMNS,
    change_from_row,
    change_rows,
    context_columns,
    context_from_row,
)

SCHEMA = "context"
_SHARES = (
    "(SELECT jsonb_agg(jsonb_build_object('scope', s.scope, 'owner_id', s.owner_id,"
    " 'shared_by', s.shared_by, 'shared_at', s.shared_at) ORDER BY s.shared_at, s.scope,"
    f" s.owner_id) FROM {SCHEMA}.shares s WHERE s.context_id = c.id) AS shares"
)
_SELECT = f"SELECT {COLUMNS}, {_SHARES} FROM {SCHEMA}.contexts c"
# Listings leave the documents out; GetContext reads one.
_LISTED = COLUMNS.replace("data,", "'{}'::jsonb AS data,").replace("base,", "NULL AS base,")
_SELECT_LISTED = f"SELECT {_LISTED}, {_SHARES} FROM {SCHEMA}.contexts c"


class NameTaken(AlreadyExists):
    def __init__(self, c: Context) -> None:
        what = f"a context named {c.name!r}" if c.name else "its default context (name '')"
        super().__init__(
            f"{c.scope.upper()} owner {c.owner_id!r} has {what} already; names are unique "
            "among an owner's live contexts"
        )


@dataclass(frozen=True)
class HistoryFilter:
    path_prefix: str = ""
    after_version: int = 0
    newest_first: bool = False


class ContextRepository:
    async def insert(
        self, conn: Conn, c: Context, digest: str, events: Sequence[events_pb2.Event]
    ) -> bool:
        """Writes the new context and its events in one statement; False when a context with
        this id exists already (then nothing is written)."""
        try:
            inserted = await conn.fetchval(
                f"WITH i AS (INSERT INTO {SCHEMA}.contexts ({COLUMNS}, request_digest)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
                " ON CONFLICT (id) DO NOTHING RETURNING 1),"
                f" o AS ({outbox.insert_sql(SCHEMA, 16, only_if='i')})"
                " SELECT count(*) FROM i",
                *context_columns(c),
                digest,
                *outbox.rows(events),
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "contexts_name":
                raise NameTaken(c) from exc
            raise
        return bool(inserted)

    async def digest(self, conn: Conn, context_id: str) -> str | None:
        value = await conn.fetchval(
            f"SELECT request_digest FROM {SCHEMA}.contexts WHERE id = $1", context_id
        )
        return str(value) if value is not None else None

    async def save(
        self,
        conn: Conn,
        c: Context,
        read_version: int,
        changes: Sequence[Change],
        events: Sequence[events_pb2.Event],
        other_base: tuple[str, dict[str, Any]] | None = None,
    ) -> None:
        """Writes the new data and version, the changes to the history and the events, only
        if nobody changed the row since it was read at `read_version`; otherwise nothing is
        written and StaleVersion is raised. `other_base` moves the common base kept on
        another context (a clone merged into its origin) in the same statement."""
        other_id, base = other_base if other_base else (None, None)
        saved = await conn.fetchval(
            f"WITH u AS (UPDATE {SCHEMA}.contexts SET data = $2, version = $3, base = $4,"
            " updated_at = $5 WHERE id = $1 AND version = $6 AND deleted_at IS NULL RETURNING 1),"
            f" h AS (INSERT INTO {SCHEMA}.history"
            " (context_id, version, seq, path, old_value, new_value, changed_by, changed_at)"
            " SELECT $1, $3, s, p, o::jsonb, n::jsonb, b, a FROM unnest($7::int[], $8::text[],"
            " $9::text[], $10::text[], $11::text[], $12::timestamptz[]) AS t(s, p, o, n, b, a)"
            " WHERE EXISTS (SELECT 1 FROM u)),"
            f" m AS (UPDATE {SCHEMA}.contexts SET base = $13 WHERE id = $14::uuid"
            " AND EXISTS (SELECT 1 FROM u)),"
            f" o AS ({outbox.insert_sql(SCHEMA, 15, only_if='u')})"
            " SELECT count(*) FROM u",
            c.id,
            c.data,
            c.version,
            c.base,
            c.updated_at,
            read_version,
            *change_rows(changes),
            base,
            other_id,
            *outbox.rows(events),
        )
        if saved != 1:
            await self._explain_refusal(conn, c.id, read_version)

    async def end(
        self, conn: Conn, c: Context, read_version: int, events: Sequence[events_pb2.Event]
    ) -> None:
        """Soft-deletes (deletion or expiry) with its events, guarded as `save` is."""
        ended = await conn.fetchval(
            f"WITH u AS (UPDATE {SCHEMA}.contexts SET deleted_at = $2, updated_at = $2"
            " WHERE id = $1 AND version = $3 AND deleted_at IS NULL RETURNING 1),"
            f" o AS ({outbox.insert_sql(SCHEMA, 4, only_if='u')})"
            " SELECT count(*) FROM u",
            c.id,
            c.deleted_at,
            read_version,
            *outbox.rows(events),
        )
        if ended != 1:
            await self._explain_refusal(conn, c.id, read_version)

    async def _explain_refusal(self, conn: Conn, context_id: str, read_version: int) -> None:
        row = await conn.fetchrow(
            f"SELECT version, deleted_at FROM {SCHEMA}.contexts WHERE id = $1", context_id
        )
        if row is None or row["deleted_at"] is not None:
            raise NotFound(f"context {context_id} does not exist")
        raise StaleVersion("context", context_id, read_version, int(row["version"]))

    async def insert_share(
        self, conn: Conn, context_id: str, share: Share, events: Sequence[events_pb2.Event]
    ) -> None:
        """Within the caller's transaction, which holds the context's row lock."""
        await conn.execute(
            f"WITH s AS (INSERT INTO {SCHEMA}.shares"
            " (context_id, scope, owner_id, shared_by, shared_at) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT DO NOTHING RETURNING 1),"
            f" o AS ({outbox.insert_sql(SCHEMA, 6, only_if='s')})"
            " SELECT count(*) FROM s",
            context_id,
            share.scope.value,
            share.owner_id,
            share.shared_by,
            share.shared_at,
            *outbox.rows(events),
        )

    async def get(self, conn: Conn, context_id: str, *, for_update: bool = False) -> Context:
        """Deleted and expired contexts too: the caller decides what it may see."""
        lock = " FOR UPDATE OF c" if for_update else ""
        row = await conn.fetchrow(f"{_SELECT} WHERE c.id = $1{lock}", context_id)
        if row is None:
            raise NotFound(f"context {context_id} does not exist")
        return context_from_row(row)

    async def live_by_name(
        self, conn: Conn, scope: ContextScope, owner_id: str, name: str
    ) -> Context | None:
        row = await conn.fetchrow(
            f"{_SELECT} WHERE c.scope = $1 AND c.owner_id = $2 AND c.name = $3"
            " AND c.deleted_at IS NULL",
            scope.value,
            owner_id,
            name,
        )
        return context_from_row(row) if row else None

    async def page(
        self,
        conn: Conn,
        scope: ContextScope,
        owner_id: str,
        owned_only: bool,
        now: datetime,
        size: int,
        token: str,
    ) -> Page[Context]:
        """Live contexts of the owner (and shared with it unless owned_only), oldest first."""
        mine = "(c.scope = $1 AND c.owner_id = $2)"
        shared = (
            f"EXISTS (SELECT 1 FROM {SCHEMA}.shares s WHERE s.context_id = c.id"
            " AND s.scope = $1 AND s.owner_id = $2)"
        )
        where = (
            "c.deleted_at IS NULL AND (c.expires_at IS NULL OR c.expires_at > $3)"
            f" AND {mine if owned_only else f'({mine} OR {shared})'}"
        )
        args: list[Any] = [scope.value, owner_id, now]
        total = await conn.fetchval(
            f"SELECT count(*) FROM {SCHEMA}.contexts c WHERE {where}", *args
        )
        if token:
            created, ident = decode_token(token, 2)
            args += [datetime.fromisoformat(created), ident]
            where += " AND (c.created_at, c.id) > ($4, $5::uuid)"
        rows = await conn.fetch(
            f"{_SELECT_LISTED} WHERE {where} ORDER BY c.created_at, c.id LIMIT {size + 1}",
            *args,
        )
        items = [context_from_row(r) for r in rows[:size]]
        next_token = ""
        if len(rows) > size:
            last = items[-1]
            next_token = encode_token(last.created_at.isoformat(), last.id)
        return Page(items, next_token, int(total))

    async def history(
        self, conn: Conn, context_id: str, f: HistoryFilter, size: int, token: str
    ) -> Page[Change]:
        where = "context_id = $1 AND version > $2"
        args: list[Any] = [context_id, f.after_version]
        if f.path_prefix:
            args.append(f.path_prefix)
            n = len(args)
            # The path, what lies below it, and writes of the objects above it (which
            # replaced it): everything that changed the value at the path.
            where += (
                f" AND (path = ${n} OR starts_with(path, ${n} || '.') OR path = ''"
                f" OR starts_with(${n}, path || '.'))"
            )
        total = await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.history WHERE {where}", *args)
        order, after = ("DESC", "<") if f.newest_first else ("ASC", ">")
        if token:
            version, seq = decode_token(token, 2)
            if not (isinstance(version, int) and isinstance(seq, int)):
                raise InvalidArgument("page_token is not one this server issued", field="page")
            args += [version, seq]
            where += f" AND (version, seq) {after} (${len(args) - 1}, ${len(args)})"
        rows = await conn.fetch(
            f"SELECT {CHANGE_COLUMNS} FROM {SCHEMA}.history WHERE {where}"
            f" ORDER BY version {order}, seq {order} LIMIT {size + 1}",
            *args,
        )
        items = [change_from_row(r) for r in rows[:size]]
        next_token = ""
        if len(rows) > size:
            last = rows[size - 1]
            next_token = encode_token(last["version"], last["seq"])
        return Page(items, next_token, int(total))

    async def write_times(self, conn: Conn, context_id: str) -> dict[str, datetime]:
        """When each path in the context's history was last written."""
        rows = await conn.fetch(
            f"SELECT path, max(changed_at) AS at FROM {SCHEMA}.history WHERE context_id = $1"
            " GROUP BY path",
            context_id,
        )
        return {r["path"]: r["at"] for r in rows}

    async def due_for_expiry(self, conn: Conn, now: datetime, limit: int) -> list[Context]:
        """Live contexts past their expiry, locked; replicas skip each other's rows."""
        rows = await conn.fetch(
            f"{_SELECT} WHERE c.expires_at <= $1 AND c.deleted_at IS NULL"
            " ORDER BY c.expires_at LIMIT $2 FOR UPDATE OF c SKIP LOCKED",
            now,
            limit,
        )
        return [context_from_row(r) for r in rows]
