"""Agents and applied task results in PostgreSQL (schema `agent`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.agent.domain import Agent
from orchestrator.agent.records import agent_from_json, agent_to_json
from orchestrator.api.events.v1 import events_pb2
from orchestrator.common import outbox
from orchestrator.common.db import Conn
from orchestrator.common.errors import NotFound, StaleVersion
from orchestrator.common.paging import Page, decode_token, encode_token

SCHEMA = "agent"
_COLUMNS = "id, name, agent_type, status, tier, capabilities, version, created_at, updated_at, body"
DEREGISTERED = "deregistered"


@dataclass(frozen=True)
class AgentFilter:
    """Domain enum values; empty `statuses` means every status except DEREGISTERED."""

    agent_types: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()


class AgentRepository:
    async def insert(self, conn: Conn, a: Agent, events: Sequence[events_pb2.Event]) -> bool:
        """Writes the new agent and its events in one statement; False when its id or its live
        name is taken already (then nothing is written)."""
        inserted = await conn.fetchval(
            f"WITH a AS (INSERT INTO {SCHEMA}.agents ({_COLUMNS})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT DO NOTHING RETURNING 1),"
            f" o AS ({outbox.insert_sql(SCHEMA, 11, only_if='a')})"
            " SELECT count(*) FROM a",
            *self._columns(a),
            *outbox.rows(events),
        )
        return bool(inserted)

    async def save(
        self, conn: Conn, a: Agent, read_version: int, events: Sequence[events_pb2.Event]
    ) -> None:
        """Writes `a` and its events in one statement, only if nobody changed the row since it
        was read at `read_version`; otherwise nothing is written and StaleVersion is raised."""
        saved = await conn.fetchval(
            f"WITH u AS (UPDATE {SCHEMA}.agents SET ({_COLUMNS}) ="
            " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " WHERE id = $1 AND version = $11 RETURNING 1),"
            f" o AS ({outbox.insert_sql(SCHEMA, 12, only_if='u')})"
            " SELECT count(*) FROM u",
            *self._columns(a),
            read_version,
            *outbox.rows(events),
        )
        if saved != 1:
            actual = await conn.fetchval(f"SELECT version FROM {SCHEMA}.agents WHERE id = $1", a.id)
            raise StaleVersion("agent", a.id, read_version, int(actual or 0))

    async def append_events(self, conn: Conn, events: Sequence[events_pb2.Event]) -> None:
        """Events of unversioned changes (load), which have no row to update."""
        if events:
            await outbox.append(conn, SCHEMA, *events)

    @staticmethod
    def _columns(a: Agent) -> tuple[Any, ...]:
        return (
            a.id,
            a.name,
            a.agent_type.value,
            a.status.value,
            a.tier.value,
            sorted(c.value for c in a.capabilities),
            a.version,
            a.created_at,
            a.updated_at,
            agent_to_json(a),
        )

    async def get(self, conn: Conn, agent_id: str) -> Agent:
        body = await conn.fetchval(f"SELECT body FROM {SCHEMA}.agents WHERE id = $1", agent_id)
        if body is None:
            raise NotFound(f"agent {agent_id} does not exist")
        return agent_from_json(body)

    async def by_name(self, conn: Conn, name: str) -> Agent:
        """The live agent of that name, else the one that bore it last."""
        body = await conn.fetchval(
            f"SELECT body FROM {SCHEMA}.agents WHERE name = $1"
            " ORDER BY (status = 'deregistered'), updated_at DESC LIMIT 1",
            name,
        )
        if body is None:
            raise NotFound(f"no agent is named {name}")
        return agent_from_json(body)

    async def many(self, conn: Conn, ids: Sequence[str]) -> list[Agent]:
        rows = await conn.fetch(
            f"SELECT body FROM {SCHEMA}.agents WHERE id = ANY($1::uuid[])", list(ids)
        )
        return [agent_from_json(r["body"]) for r in rows]

    async def live(self, conn: Conn) -> list[Agent]:
        rows = await conn.fetch(
            f"SELECT body FROM {SCHEMA}.agents WHERE status <> $1", DEREGISTERED
        )
        return [agent_from_json(r["body"]) for r in rows]

    async def live_versions(self, conn: Conn) -> dict[str, int]:
        rows = await conn.fetch(
            f"SELECT id::text, version FROM {SCHEMA}.agents WHERE status <> $1", DEREGISTERED
        )
        return {r["id"]: r["version"] for r in rows}

    async def ids_in(self, conn: Conn, statuses: Sequence[str]) -> list[str]:
        rows = await conn.fetch(
            f"SELECT id::text FROM {SCHEMA}.agents WHERE status = ANY($1)", list(statuses)
        )
        return [r["id"] for r in rows]

    async def page(self, conn: Conn, f: AgentFilter, size: int, token: str) -> Page[Agent]:
        where, args = self._where(f)
        total = await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.agents WHERE {where}", *args)
        if token:
            name, ident = decode_token(token, 2)
            args += [str(name), str(ident)]
            where += f" AND (name, id) > (${len(args) - 1}, ${len(args)}::uuid)"
        rows = await conn.fetch(
            f"SELECT body, name, id::text AS id FROM {SCHEMA}.agents WHERE {where}"
            f" ORDER BY name, id LIMIT {size + 1}",
            *args,
        )
        items = [agent_from_json(r["body"]) for r in rows[:size]]
        next_token = ""
        if len(rows) > size:
            last = rows[size - 1]
            next_token = encode_token(last["name"], last["id"])
        return Page(items, next_token, int(total))

    @staticmethod
    def _where(f: AgentFilter) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if f.statuses:
            args.append(list(f.statuses))
            clauses.append(f"status = ANY(${len(args)})")
        else:
            args.append(DEREGISTERED)
            clauses.append(f"status <> ${len(args)}")
        for column, values in (("agent_type", f.agent_types), ("tier", f.tiers)):
            if values:
                args.append(list(values))
                clauses.append(f"{column} = ANY(${len(args)})")
        if f.capabilities:
            args.append(list(f.capabilities))
            clauses.append(f"capabilities @> ${len(args)}::text[]")
        if f.ids:
            args.append(list(f.ids))
            clauses.append(f"id = ANY(${len(args)}::uuid[])")
        return " AND ".join(clauses), args

    async def claim_results(
        self, conn: Conn, agent_id: str, runs: Sequence[tuple[str, int]]
    ) -> set[tuple[str, int]]:
        """The (task id, fencing token) pairs not applied before, now claimed for good."""
        rows = await conn.fetch(
            f"INSERT INTO {SCHEMA}.task_results (task_id, fencing_token, agent_id)"
            " SELECT t, f, $3 FROM unnest($1::text[], $2::bigint[]) AS r(t, f)"
            " ON CONFLICT DO NOTHING RETURNING task_id, fencing_token",
            [task for task, _ in runs],
            [token for _, token in runs],
            agent_id,
        )
        return {(r["task_id"], r["fencing_token"]) for r in rows}
