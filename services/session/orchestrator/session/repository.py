"""Sessions and checkpoints in PostgreSQL (schema `session`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator.api.events.v1 import events_pb2
from orchestrator.common import outbox
from orchestrator.common.db import Conn
from orchestrator.common.errors import NotFound, StaleVersion
from orchestrator.common.paging import Page, decode_token, encode_token
from orchestrator.session.domain import Checkpoint, Session
from orchestrator.session.records import session_from_json, session_to_json

SCHEMA = "session"
_COLUMNS = (
    "id, status, session_type, priority, tags, parent_id, created_by, version, created_at,"
    " updated_at, deadline_at, deleted_at, body"
)


@dataclass(frozen=True)
class SessionFilter:
    statuses: tuple[str, ...] = ()
    session_types: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    parent_id: str | None = None
    created_by: str | None = None


class SessionRepository:
    async def insert(self, conn: Conn, s: Session, events: Sequence[events_pb2.Event]) -> bool:
        """Writes the new session and its events in one statement; False when a session with
        this id exists already (then nothing is written)."""
        inserted = await conn.fetchval(
            f"WITH s AS (INSERT INTO {SCHEMA}.sessions ({_COLUMNS})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            " ON CONFLICT (id) DO NOTHING RETURNING 1),"
            f" o AS ({outbox.insert_sql(SCHEMA, 14, only_if='s')})"
            " SELECT count(*) FROM s",
            *self._columns(s),
            *outbox.rows(events),
        )
        return bool(inserted)

    async def save(
        self, conn: Conn, s: Session, read_version: int, events: Sequence[events_pb2.Event]
    ) -> None:
        """Writes `s` and its events in one statement, only if nobody changed the row since it
        was read at `read_version`; otherwise nothing is written and StaleVersion is raised."""
        saved = await conn.fetchval(
            f"WITH u AS (UPDATE {SCHEMA}.sessions SET ({_COLUMNS}) ="
            " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            " WHERE id = $1 AND version = $14 RETURNING 1),"
            f" o AS ({outbox.insert_sql(SCHEMA, 15, only_if='u')})"
            " SELECT count(*) FROM u",
            *self._columns(s),
            read_version,
            *outbox.rows(events),
        )
        if saved != 1:
            actual = await conn.fetchval(
                f"SELECT version FROM {SCHEMA}.sessions WHERE id = $1", s.id
            )
            raise StaleVersion("session", s.id, read_version, int(actual or 0))

    @staticmethod
    def _columns(s: Session) -> tuple[Any, ...]:
        return (
            s.id,
            s.status.value,
            s.session_type.value,
            s.priority.value,
            s.tags,
            s.parent_id,
            s.created_by,
            s.version,
            s.created_at,
            s.updated_at,
            s.deadline,
            s.deleted_at,
            session_to_json(s),
        )

    async def get(self, conn: Conn, session_id: str, *, include_deleted: bool = False) -> Session:
        row = await conn.fetchrow(
            f"SELECT body, deleted_at, ARRAY(SELECT c.id::text FROM {SCHEMA}.sessions c"
            " WHERE c.parent_id = s.id AND c.deleted_at IS NULL ORDER BY c.created_at) AS children"
            f" FROM {SCHEMA}.sessions s WHERE s.id = $1",
            session_id,
        )
        if row is None or (row["deleted_at"] is not None and not include_deleted):
            raise NotFound(f"session {session_id} does not exist")
        return session_from_json(row["body"], list(row["children"]))

    async def lock(self, conn: Conn, session_id: str) -> None:
        """Locks the session's row until the caller's transaction ends (no-op if missing)."""
        await conn.execute(f"SELECT 1 FROM {SCHEMA}.sessions WHERE id = $1 FOR UPDATE", session_id)

    async def exists(self, conn: Conn, session_id: str) -> bool:
        return bool(
            await conn.fetchval(
                f"SELECT true FROM {SCHEMA}.sessions WHERE id = $1 AND deleted_at IS NULL",
                session_id,
            )
        )

    async def page(self, conn: Conn, f: SessionFilter, size: int, token: str) -> Page[Session]:
        where, args = self._where(f)
        total = await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.sessions WHERE {where}", *args)
        if token:
            created, ident = decode_token(token, 2)
            args += [datetime.fromisoformat(created), ident]
            where += f" AND (created_at, id) < (${len(args) - 1}, ${len(args)}::uuid)"
        rows = await conn.fetch(
            f"SELECT body, created_at, id::text AS id FROM {SCHEMA}.sessions WHERE {where}"
            f" ORDER BY created_at DESC, id DESC LIMIT {size + 1}",
            *args,
        )
        items = [session_from_json(r["body"]) for r in rows[:size]]
        next_token = ""
        if len(rows) > size:
            last = rows[size - 1]
            next_token = encode_token(last["created_at"].isoformat(), last["id"])
        return Page(items, next_token, int(total))

    @staticmethod
    def _where(f: SessionFilter) -> tuple[str, list[Any]]:
        clauses: list[str] = ["deleted_at IS NULL"]
        args: list[Any] = []
        for column, values in (
            ("status", f.statuses),
            ("session_type", f.session_types),
            ("priority", f.priorities),
        ):
            if values:
                args.append(list(values))
                clauses.append(f"{column} = ANY(${len(args)})")
        if f.tags:
            args.append(list(f.tags))
            clauses.append(f"tags @> ${len(args)}")
        if f.parent_id:
            args.append(f.parent_id)
            clauses.append(f"parent_id = ${len(args)}::uuid")
        if f.created_by:
            args.append(f.created_by)
            clauses.append(f"created_by = ${len(args)}")
        return " AND ".join(clauses), args

    async def insert_checkpoint(self, conn: Conn, cp: Checkpoint) -> None:
        await conn.execute(
            f"INSERT INTO {SCHEMA}.checkpoints (session_id, sequence, data, created_by, created_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            cp.session_id,
            cp.sequence,
            cp.data,
            cp.created_by,
            cp.created_at,
        )

    async def list_checkpoints(
        self, conn: Conn, session_id: str, size: int, token: str
    ) -> Page[Checkpoint]:
        after = int(decode_token(token, 1)[0]) if token else 0
        rows = await conn.fetch(
            f"SELECT session_id::text, sequence, data, created_by, created_at"
            f" FROM {SCHEMA}.checkpoints WHERE session_id = $1 AND sequence > $2"
            f" ORDER BY sequence LIMIT {size + 1}",
            session_id,
            after,
        )
        total = await conn.fetchval(
            f"SELECT count(*) FROM {SCHEMA}.checkpoints WHERE session_id = $1", session_id
        )
        items = [
            Checkpoint(
                session_id=r["session_id"],
                sequence=r["sequence"],
                created_at=r["created_at"],
                data=r["data"],
                created_by=r["created_by"],
            )
            for r in rows[:size]
        ]
        next_token = encode_token(items[-1].sequence) if len(rows) > size else ""
        return Page(items, next_token, int(total))

    async def claim_usage_report(self, conn: Conn, session_id: str, report_id: str) -> bool:
        """False when this report was applied before."""
        return bool(
            await conn.fetchval(
                f"INSERT INTO {SCHEMA}.usage_reports (session_id, report_id) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING RETURNING true",
                session_id,
                report_id,
            )
        )

    async def overdue(self, conn: Conn, now: datetime, limit: int) -> list[str]:
        """Ids of sessions past their deadline, locked; replicas skip each other's rows."""
        rows = await conn.fetch(
            f"SELECT id::text FROM {SCHEMA}.sessions WHERE deadline_at <= $1"
            " AND deleted_at IS NULL ORDER BY deadline_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            limit,
        )
        return [r["id"] for r in rows]
