"""Tasks and dependencies in PostgreSQL (schema `task`).

Every write of a session's tasks runs in a transaction holding that session's advisory lock
(`lock_session`): the cycle check, the readiness cascade and the parent roll-up read other
rows and decide from them, and the lock makes those reads current. Each statement writes
tasks together with their outbox events; an update is guarded by the version it read.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson

from orchestrator.api.events.v1 import events_pb2
from orchestrator.common import outbox
from orchestrator.common.db import Conn
from orchestrator.common.errors import InvalidArgument, NotFound, StaleVersion
from orchestrator.task.domain import (
    TERMINAL_STATUSES,
    Dependency,
    DependencyType,
    GraphTask,
    Hold,
    Peer,
    Task,
    TaskPriority,
    TaskStatus,
)
from orchestrator.task.records import dependency_from_json, task_from_json, task_to_json

SCHEMA = "task"
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50

# The task columns in `_row` order, each with the array type `unnest` reads it as; the body
# travels as JSON text and is cast to jsonb in SQL.
_SPEC = (
    ("id", "uuid"),
    ("session_id", "uuid"),
    ("parent_id", "uuid"),
    ("depth", "int"),
    ("title", "text"),
    ("status", "text"),
    ("hold", "text"),
    ("priority", "text"),
    ("assigned_agent_id", "text"),
    ("expected_hours", "float8"),
    ("sigma_hours", "float8"),
    ("started_at", "timestamptz"),
    ("completed_at", "timestamptz"),
    ("lease_expires_at", "timestamptz"),
    ("version", "int8"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("body", "text"),
)
_NAMES = [name for name, _ in _SPEC]
_TYPES = [f"{kind}[]" for _, kind in _SPEC]
_COLUMNS = ", ".join(_NAMES)
_WIDTH = len(_SPEC)
_DEPENDENCY_TYPES = ["uuid[]", "uuid[]", "uuid[]", "text[]", "float8[]", "timestamptz[]"]

# A whole aggregate: the body, its children's ids and its dependencies, all in one row.
_SELECT_TASK = f"""
SELECT t.seq, t.body,
    ARRAY(SELECT c.id::text FROM {SCHEMA}.tasks c WHERE c.parent_id = t.id ORDER BY c.seq)
        AS children,
    COALESCE((SELECT json_agg(json_build_object(
            'predecessor_id', d.predecessor_id, 'successor_id', d.successor_id,
            'dependency_type', d.dependency_type, 'lag_hours', d.lag_hours,
            'created_at', d.created_at) ORDER BY d.seq)
        FROM {SCHEMA}.dependencies d WHERE d.successor_id = t.id), '[]'::json) AS deps
FROM {SCHEMA}.tasks t"""

_PEER = (
    "SELECT id::text, session_id::text, parent_id::text, title, status, started_at,"
    f" completed_at FROM {SCHEMA}.tasks"
)


@dataclass(frozen=True)
class TaskFilter:
    session_id: str | None = None
    parent_id: str | None = None
    roots_only: bool = False
    statuses: tuple[str, ...] = ()
    assigned_agent_id: str | None = None


@dataclass(frozen=True)
class Page:
    items: list[Task]
    next_token: str
    total: int


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument("page_size must not be negative", field="page.page_size")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _encode_token(seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([seq]).encode()).decode()


def _decode_token(token: str) -> int:
    try:
        parts = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument("page_token is not one this server issued", field="page") from exc
    if not isinstance(parts, list) or len(parts) != 1 or not isinstance(parts[0], int):
        raise InvalidArgument("page_token is not one this server issued", field="page")
    return parts[0]


def _row(t: Task) -> tuple[Any, ...]:
    return (
        t.id,
        t.session_id,
        t.parent_id,
        t.depth,
        t.title,
        t.status.value,
        t.hold.value,
        t.priority.value,
        t.assigned_agent_id or None,
        t.estimate.expected_hours,
        t.estimate.sigma_hours,
        t.started_at,
        t.completed_at,
        t.lease_expires_at,
        t.version,
        t.created_at,
        t.updated_at,
        # orjson: several times quicker than the standard library, for every task saved.
        orjson.dumps(task_to_json(t)).decode(),
    )


def _columns_of(tasks: Sequence[Task]) -> list[list[Any]]:
    """The tasks' rows as one array per column, for `unnest`."""
    return [list(column) for column in zip(*(_row(t) for t in tasks), strict=True)] or [
        [] for _ in range(_WIDTH)
    ]


def _unnest(first: int, types: Sequence[str]) -> str:
    return ", ".join(f"${first + i}::{kind}" for i, kind in enumerate(types))


def _save_sql(guard: str = "") -> str:
    """The CTEs that save each (task, version read) of parameters $1..$19 with the events of
    $20..$24, the version guarding each update; the statement reads `u`, the ids written.
    With `guard`, a condition, nothing is written unless it holds."""
    where = f" WHERE {guard}" if guard else ""
    settable = ", ".join(_NAMES[1:])
    values = ", ".join(f"v.{n}" if n != "body" else "v.body::jsonb" for n in _NAMES[1:])
    return (
        f"v AS (SELECT * FROM unnest({_unnest(1, [*_TYPES, 'int8[]'])})"
        f" AS v({_COLUMNS}, read_version){where}),"
        f" u AS (UPDATE {SCHEMA}.tasks t SET ({settable}) = ({values}) FROM v"
        " WHERE t.id = v.id AND t.version = v.read_version RETURNING t.id),"
        f" o AS ({outbox.insert_sql(SCHEMA, _WIDTH + 2, only_if='u')})"
    )


_SAVE = _save_sql()
# The sessions of $25 have the stamps of $26 (NULL: none yet): `save_if_stamped`'s guard.
_STAMPED = (
    f"g AS (SELECT count(*) = cardinality(${_WIDTH + 7}::uuid[]) AS ok"
    f" FROM unnest(${_WIDTH + 7}::uuid[], ${_WIDTH + 8}::int8[]) AS x(sid, stamp)"
    f" LEFT JOIN {SCHEMA}.session_stamps s ON s.session_id = x.sid"
    " WHERE s.stamp IS NOT DISTINCT FROM x.stamp)"
)
_SAVE_IF_STAMPED = (
    f"WITH {_STAMPED}, {_save_sql('(SELECT ok FROM g)')}"
    " SELECT (SELECT count(*) FROM u) AS saved, (SELECT ok FROM g) AS ok,"
    " pg_current_xact_id()::text::bigint AS own"
)

# By value, as stored: a dict lookup is many times quicker than calling the enum, and the graph
# converts tens of thousands of values per call.
_STATUSES = {s.value: s for s in TaskStatus}
_PRIORITIES = {p.value: p for p in TaskPriority}
_HOLDS = {h.value: h for h in Hold}
_TERMINAL_VALUES = [s.value for s in TERMINAL_STATUSES]
# A task that has not ended (not in TERMINAL_STATUSES; a unit test holds the two together), as
# the partial index tasks_open_children (003) spells it: a literal list lets the planner use
# that index, a parameter would not.
OPEN_CHILD = "status NOT IN ('completed', 'failed', 'cancelled', 'skipped')"
_DEPENDENCY_TYPES_BY_VALUE = {k.value: k for k in DependencyType}


def _task(row: Any) -> Task:
    deps = [dependency_from_json(d) for d in row["deps"]]
    return task_from_json(row["body"], list(row["children"]), deps)


class TaskSource(Protocol):
    """What the group commit and the cascade read and write: the database (`TaskRepository`)
    or a batch's view of cached graphs (`GraphView`)."""

    async def get_many(self, conn: Conn, ids: Iterable[str]) -> list[Task]: ...

    async def peers(
        self, conn: Conn, ids: Iterable[str], children_of: Iterable[str] = ()
    ) -> dict[str, Peer]: ...

    async def around(
        self, conn: Conn, frontier: Iterable[str], held: Mapping[str, Task] | None = None
    ) -> list[Task]: ...

    async def running_with_open_children(
        self, conn: Conn, parent_ids: Sequence[str]
    ) -> set[str]: ...

    async def save(
        self, conn: Conn, changed: Sequence[tuple[Task, int]], events: Sequence[events_pb2.Event]
    ) -> None: ...


async def neighbourhood(
    source: TaskSource, conn: Conn, known: Mapping[str, Task], dependants: set[str]
) -> list[Task]:
    """`around` once the frontier (`known`, by id) and its `dependants` are read: those, with
    the frontier's children and parents (but running parents with a subtask still open), read
    through `source`."""
    wanted = set(dependants)
    for task in known.values():
        wanted.update(task.child_ids)
    parents = {t.parent_id for t in known.values() if t.parent_id} - wanted - set(known)
    if parents:
        wanted |= parents - await source.running_with_open_children(conn, list(parents))
    wanted -= set(known)
    loaded = await source.get_many(conn, wanted) if wanted else []
    return [*known.values(), *loaded]


class TaskRepository:
    async def lock_session(self, conn: Conn, session_id: str) -> None:
        """Serialises this transaction with every other write to the session's tasks."""
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))", f"orch-task-session:{session_id}"
        )

    async def lock_session_of(self, conn: Conn, task_id: str) -> str:
        """Takes the lock of the task's session; returns the session id."""
        session_id = await conn.fetchval(
            f"SELECT session_id::text FROM {SCHEMA}.tasks WHERE id = $1", task_id
        )
        if session_id is None:
            raise NotFound(f"task {task_id} does not exist")
        await self.lock_session(conn, session_id)
        return str(session_id)

    async def session_status(self, conn: Conn, session_id: str) -> str | None:
        """The session's status as its last consumed event gave it ("deleted" once it was
        deleted); None before any event."""
        row = await conn.fetchrow(
            f"SELECT status, deleted FROM {SCHEMA}.sessions WHERE session_id = $1", session_id
        )
        if row is None:
            return None
        return "deleted" if row["deleted"] else str(row["status"])

    async def agent_loads(self, conn: Conn) -> dict[str, int]:
        """How many tasks each agent holds, assigned or running: the load routing counts."""
        rows = await conn.fetch(
            f"SELECT assigned_agent_id, count(*) FROM {SCHEMA}.tasks"
            # As the partial index tasks_leased (005) spells it.
            " WHERE status IN ('assigned', 'in_progress') AND assigned_agent_id IS NOT NULL"
            " GROUP BY assigned_agent_id"
        )
        return {r[0]: int(r[1]) for r in rows}

    async def lock_sessions_of(self, conn: Conn, task_ids: Sequence[str]) -> list[str]:
        """Takes the locks of the tasks' sessions in one statement, in the one order every
        writer uses (so two never wait for each other); returns the sessions, in that order."""
        rows = await conn.fetch(
            "SELECT s.sid, pg_advisory_xact_lock(hashtext('orch-task-session:' || s.sid)) FROM ("
            f"SELECT DISTINCT session_id::text AS sid FROM {SCHEMA}.tasks"
            " WHERE id = ANY($1::uuid[]) ORDER BY sid) AS s",
            list(task_ids),
        )
        return [r[0] for r in rows]

    @staticmethod
    def lock_sql(session_ids: Iterable[str]) -> str:
        """The statement that takes the locks of `session_ids` as `lock_sessions_of` does (same
        keys, same order), for a script sent in one round trip with BEGIN. The ids are inlined:
        each must be a canonical uuid, which is checked here."""
        ids = sorted(set(session_ids))
        if any(str(uuid.UUID(i)) != i for i in ids):
            raise ValueError(f"session ids must be canonical uuids: {ids}")
        return "; ".join(
            f"SELECT pg_advisory_xact_lock(hashtext('orch-task-session:{i}'))" for i in ids
        )

    async def stamps(
        self, conn: Conn, session_ids: Sequence[str]
    ) -> tuple[dict[str, int | None], int]:
        """The stamp of each session (the id of the transaction that last wrote its tasks or
        dependencies, None before any write was stamped) and this transaction's own id, which
        becomes the stamp of every session it writes."""
        rows = await conn.fetch(
            "SELECT s.sid::text, st.stamp, pg_current_xact_id()::text::bigint"
            f" FROM unnest($1::uuid[]) AS s(sid) LEFT JOIN {SCHEMA}.session_stamps st"
            " ON st.session_id = s.sid",
            list(session_ids),
        )
        own = int(rows[0][2]) if rows else 0
        return {r[0]: r[1] for r in rows}, own

    async def get(self, conn: Conn, task_id: str) -> Task:
        row = await conn.fetchrow(f"{_SELECT_TASK} WHERE t.id = $1", task_id)
        if row is None:
            raise NotFound(f"task {task_id} does not exist")
        return _task(row)

    async def get_many(self, conn: Conn, ids: Iterable[str]) -> list[Task]:
        rows = await conn.fetch(
            f"{_SELECT_TASK} WHERE t.id = ANY($1::uuid[]) ORDER BY t.seq", list(ids)
        )
        return [_task(r) for r in rows]

    async def of_session(self, conn: Conn, session_id: str, ids: Sequence[str] = ()) -> list[Task]:
        """Every task of the session (or those of `ids`), in creation order."""
        if ids:
            rows = await conn.fetch(
                f"{_SELECT_TASK} WHERE t.session_id = $1 AND t.id = ANY($2::uuid[]) ORDER BY t.seq",
                session_id,
                list(ids),
            )
        else:
            rows = await conn.fetch(
                f"{_SELECT_TASK} WHERE t.session_id = $1 ORDER BY t.seq", session_id
            )
        return [_task(r) for r in rows]

    async def whole_session(
        self, conn: Conn, session_id: str, limit: int
    ) -> tuple[list[Task], list[int]] | None:
        """Every task of the session in creation order, with its `seq`; None when it has more
        than `limit`."""
        rows = await conn.fetch(
            f"{_SELECT_TASK} WHERE t.session_id = $1 ORDER BY t.seq LIMIT $2",
            session_id,
            limit + 1,
        )
        if len(rows) > limit:
            return None
        return [_task(r) for r in rows], [int(r["seq"]) for r in rows]

    async def insert(
        self, conn: Conn, tasks: Sequence[Task], events: Sequence[events_pb2.Event]
    ) -> int:
        """Writes new tasks, their dependencies and events in one statement; returns how many
        were new (a task whose id exists already is left as it is, with its dependencies)."""
        deps = [d for t in tasks for d in t.dependencies]
        sessions = [t.session_id for t in tasks for _ in t.dependencies]
        base = _WIDTH + 1
        inserted = await conn.fetchval(
            f"WITH v AS (SELECT * FROM unnest({_unnest(1, _TYPES)}) WITH ORDINALITY"
            f" AS v({_COLUMNS}, ord)),"
            f" t AS (INSERT INTO {SCHEMA}.tasks ({_COLUMNS})"
            f" SELECT {_COLUMNS.replace('body', 'body::jsonb')} FROM v ORDER BY ord"
            " ON CONFLICT (id) DO NOTHING RETURNING id),"
            f" d AS (INSERT INTO {SCHEMA}.dependencies"
            " (successor_id, predecessor_id, session_id, dependency_type, lag_hours, created_at)"
            " SELECT x.s, x.p, x.sid, x.k, x.lag, x.at"
            f" FROM unnest({_unnest(base, _DEPENDENCY_TYPES)})"
            " WITH ORDINALITY AS x(s, p, sid, k, lag, at, ord)"
            " JOIN t ON t.id = x.s ORDER BY x.ord),"
            f" o AS ({outbox.insert_sql(SCHEMA, base + 6, only_if='t')})"
            " SELECT count(*) FROM t",
            *_columns_of(tasks),
            [d.successor_id for d in deps],
            [d.predecessor_id for d in deps],
            sessions,
            [d.dependency_type.value for d in deps],
            [d.lag_hours for d in deps],
            [d.created_at for d in deps],
            *outbox.rows(events),
        )
        return int(inserted)

    async def save(
        self, conn: Conn, changed: Sequence[tuple[Task, int]], events: Sequence[events_pb2.Event]
    ) -> None:
        """Writes each (task, version it was read at) and the events in one statement. Any row
        changed since it was read makes it raise StaleVersion; the caller's transaction then
        rolls every write back."""
        if not changed:
            return
        saved = await conn.fetchval(
            f"WITH {_SAVE} SELECT count(*) FROM u",
            *_columns_of([t for t, _ in changed]),
            [version for _, version in changed],
            *outbox.rows(events),
        )
        if saved != len(changed):
            await self._raise_stale(conn, changed)

    async def save_if_stamped(
        self,
        conn: Conn,
        changed: Sequence[tuple[Task, int]],
        events: Sequence[events_pb2.Event],
        stamps: Mapping[str, int | None],
    ) -> int | None:
        """`save`, provided every session of `stamps` still has that stamp (nobody wrote it
        since): then this transaction's id, the sessions' stamp from now on; else None, and
        nothing was written. The check and the writes are one statement, so one round trip."""
        row = await conn.fetchrow(
            _SAVE_IF_STAMPED,
            *_columns_of([t for t, _ in changed]),
            [version for _, version in changed],
            *outbox.rows(events),
            list(stamps),
            list(stamps.values()),
        )
        assert row is not None
        if not row["ok"]:
            return None
        if row["saved"] != len(changed):
            await self._raise_stale(conn, changed)
        return int(row["own"])

    async def _raise_stale(self, conn: Conn, changed: Sequence[tuple[Task, int]]) -> None:
        rows = await conn.fetch(
            f"SELECT id::text, version FROM {SCHEMA}.tasks WHERE id = ANY($1::uuid[])",
            [t.id for t, _ in changed],
        )
        actual = {r["id"]: int(r["version"]) for r in rows}
        for task, read in changed:
            if actual.get(task.id) != read:
                raise StaleVersion("task", task.id, read, actual.get(task.id, 0))
        raise StaleVersion("task", changed[0][0].id, changed[0][1], changed[0][1])

    async def insert_dependency(self, conn: Conn, session_id: str, d: Dependency) -> None:
        await conn.execute(
            f"INSERT INTO {SCHEMA}.dependencies (successor_id, predecessor_id, session_id,"
            " dependency_type, lag_hours, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            d.successor_id,
            d.predecessor_id,
            session_id,
            d.dependency_type.value,
            d.lag_hours,
            d.created_at,
        )

    async def delete_dependency(self, conn: Conn, successor_id: str, predecessor_id: str) -> None:
        await conn.execute(
            f"DELETE FROM {SCHEMA}.dependencies WHERE successor_id = $1 AND predecessor_id = $2",
            successor_id,
            predecessor_id,
        )

    async def peers(
        self, conn: Conn, ids: Iterable[str], children_of: Iterable[str] = ()
    ) -> dict[str, Peer]:
        """The tasks of `ids` and the children of `children_of`, as the scheduler sees them."""
        rows = await conn.fetch(
            f"{_PEER} WHERE id = ANY($1::uuid[]) OR parent_id = ANY($2::uuid[])",
            list(ids),
            list(children_of),
        )
        return {
            r["id"]: Peer(
                r["id"],
                r["title"],
                _STATUSES[r["status"]],
                r["parent_id"],
                r["started_at"],
                r["completed_at"],
                r["session_id"],
            )
            for r in rows
        }

    async def around(
        self, conn: Conn, frontier: Iterable[str], held: Mapping[str, Task] | None = None
    ) -> list[Task]:
        """The tasks a change to `frontier` may affect: those tasks, their dependants, their
        children and their parents — but for a running parent with a subtask still open, which
        cannot roll up yet (and may have thousands of subtasks to load). Tasks in `held` (as
        the caller just wrote them in this transaction) are taken from it, not read again.

        Simple statements rather than one: each is planned in a blink, where one query joining
        it all cost more to plan than to run."""
        ids = list(dict.fromkeys(frontier))
        known = {i: held[i] for i in ids if held is not None and i in held}
        missing = [i for i in ids if i not in known]
        if missing:
            known.update((t.id, t) for t in await self.get_many(conn, missing))
        successors = await conn.fetch(
            f"SELECT DISTINCT successor_id::text FROM {SCHEMA}.dependencies"
            " WHERE predecessor_id = ANY($1::uuid[])",
            ids,
        )
        return await neighbourhood(self, conn, known, {r[0] for r in successors})

    async def running_with_open_children(self, conn: Conn, parent_ids: Sequence[str]) -> set[str]:
        """Those of `parent_ids` IN_PROGRESS with at least one subtask that has not ended."""
        # Driven from the ids (key lookups), never from the status index, whose entries for
        # busy statuses pile up between vacuums.
        rows = await conn.fetch(
            f"SELECT t.id::text FROM unnest($1::uuid[]) AS p(id) JOIN {SCHEMA}.tasks t"
            " ON t.id = p.id WHERE t.status = 'in_progress' AND EXISTS ("
            f"SELECT 1 FROM {SCHEMA}.tasks o WHERE o.parent_id = t.id AND o.{OPEN_CHILD})",
            list(parent_ids),
        )
        return {r[0] for r in rows}

    async def graph(self, conn: Conn, session_id: str) -> tuple[list[GraphTask], list[Dependency]]:
        """A whole session's graph in two queries, whatever its size; no body is read."""
        rows = await conn.fetch(
            "SELECT id::text, parent_id::text, title, status, hold, priority,"
            " assigned_agent_id, expected_hours, sigma_hours, seq"
            f" FROM {SCHEMA}.tasks WHERE session_id = $1",
            session_id,
        )
        tasks = [
            GraphTask(
                id=r[0],
                parent_id=r[1],
                title=r[2],
                status=_STATUSES[r[3]],
                priority=_PRIORITIES[r[5]],
                expected_hours=r[7],
                sigma_hours=r[8],
                order=r[9],
                hold=_HOLDS[r[4]],
                assigned_agent_id=r[6] or "",
            )
            for r in rows
        ]
        edges = await conn.fetch(
            "SELECT predecessor_id::text, successor_id::text, dependency_type, lag_hours,"
            f" created_at FROM {SCHEMA}.dependencies WHERE session_id = $1 ORDER BY seq",
            session_id,
        )
        kinds = _DEPENDENCY_TYPES_BY_VALUE
        deps = [Dependency(e[0], e[1], kinds[e[2]], e[3], e[4]) for e in edges]
        return tasks, deps

    async def page(self, conn: Conn, f: TaskFilter, size: int, token: str) -> Page:
        where, args = self._where(f)
        total = await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.tasks t WHERE {where}", *args)
        if token:
            args.append(_decode_token(token))
            where += f" AND t.seq > ${len(args)}"
        rows = await conn.fetch(
            f"{_SELECT_TASK} WHERE {where} ORDER BY t.seq LIMIT {size + 1}",
            *args,
        )
        items = [_task(r) for r in rows[:size]]
        next_token = _encode_token(rows[size - 1]["seq"]) if len(rows) > size else ""
        return Page(items, next_token, int(total))

    @staticmethod
    def _where(f: TaskFilter) -> tuple[str, list[Any]]:
        clauses: list[str] = ["true"]
        args: list[Any] = []
        for column, value in (
            ("session_id", f.session_id),
            ("parent_id", f.parent_id),
            ("assigned_agent_id", f.assigned_agent_id),
        ):
            if value:
                args.append(value)
                cast = "::uuid" if column != "assigned_agent_id" else ""
                clauses.append(f"t.{column} = ${len(args)}{cast}")
        if f.roots_only:
            clauses.append("t.parent_id IS NULL")
        if f.statuses:
            args.append(list(f.statuses))
            clauses.append(f"t.status = ANY(${len(args)})")
        return " AND ".join(clauses), args

    async def expired_leases(self, conn: Conn, now: datetime, limit: int) -> list[str]:
        rows = await conn.fetch(
            f"SELECT id::text FROM {SCHEMA}.tasks WHERE lease_expires_at <= $1"
            " ORDER BY lease_expires_at LIMIT $2",
            now,
            limit,
        )
        return [r["id"] for r in rows]
