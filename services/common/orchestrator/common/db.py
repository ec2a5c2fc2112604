"""PostgreSQL: the connection pool and per-service migrations applied under an advisory lock.

Each service owns one schema. Its migrations are the `NNN_name.sql` files of its migrations
package, applied in order, each in its own transaction, recorded in `<schema>.schema_migrations`.
An advisory lock keyed on the schema makes replicas that start together apply them exactly once.
"""

from __future__ import annotations

import json
import logging
import re
from importlib import resources

import asyncpg
import orjson

from orchestrator.common.telemetry import watch_queries

log = logging.getLogger(__name__)

# A connection as handed out by the pool or opened directly; queries accept either.
Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

_SCHEMA = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_MIGRATION = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

# Tables every service schema carries: the outbox the relay drains, the inbox consumers dedupe on.
_RUNTIME_DDL = """
CREATE TABLE IF NOT EXISTS {schema}.outbox (
    id            bigserial PRIMARY KEY,
    event_id      uuid NOT NULL UNIQUE,
    subject       text NOT NULL,
    aggregate_id  text NOT NULL,
    payload       bytea NOT NULL,
    headers       jsonb NOT NULL DEFAULT '{{}}',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION {schema}.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{schema}_outbox', '');
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS outbox_notify ON {schema}.outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON {schema}.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.outbox_notify();
CREATE TABLE IF NOT EXISTS {schema}.inbox (
    consumer      text NOT NULL,
    event_id      uuid NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
"""


# The server processes (PIDs) behind this process's connections: a notification from one of
# them reports this process's own write (see the task scheduler).
LOCAL_BACKENDS: set[int] = set()


async def _init_connection(conn: asyncpg.Connection) -> None:
    LOCAL_BACKENDS.add(conn.get_server_pid())
    # orjson parses what the services read back (task bodies, many per batch) several times
    # faster than the standard library, to the same values.
    for kind in ("jsonb", "json"):
        await conn.set_type_codec(
            kind, encoder=json.dumps, decoder=orjson.loads, schema="pg_catalog"
        )
    watch_queries(conn)  # a span per query while spans are made


async def _keep_session_state(conn: asyncpg.Connection) -> None:
    """Pool connections carry no session state of ours (no LISTEN, no session advisory lock,
    no SET): skipping asyncpg's default RESET ALL saves a round trip on every release."""


async def connect(dsn: str) -> asyncpg.Connection:
    """One connection outside the pool, for work that owns session state (LISTEN, locks)."""
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session_state,
        command_timeout=30,
    )
    if pool is None:  # pragma: no cover - asyncpg returns None only for a closed loop
        raise RuntimeError("could not create the PostgreSQL pool")
    return pool


def _migration_files(package: str) -> list[tuple[str, str]]:
    found = []
    for entry in resources.files(package).iterdir():
        if _MIGRATION.match(entry.name):
            found.append((entry.name.removesuffix(".sql"), entry.read_text()))
    return sorted(found)


async def migrate(pool: asyncpg.Pool, schema: str, package: str) -> list[str]:
    """Applies the pending migrations of `package` to `schema`; returns the names applied."""
    if not _SCHEMA.match(schema):
        raise ValueError(f"bad schema name {schema!r}")
    applied: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"orch-migrate:{schema}")
        try:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
                "name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            await conn.execute(_RUNTIME_DDL.format(schema=schema))
            done = {
                r["name"] for r in await conn.fetch(f"SELECT name FROM {schema}.schema_migrations")
            }
            for name, sql in _migration_files(package):
                if name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql.replace("{schema}", schema))
                    await conn.execute(
                        f"INSERT INTO {schema}.schema_migrations (name) VALUES ($1)", name
                    )
                applied.append(name)
                log.info("applied migration %s.%s", schema, name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"orch-migrate:{schema}")
    return applied
