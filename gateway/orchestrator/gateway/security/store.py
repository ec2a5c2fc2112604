"""Where API keys live: a port, and its PostgreSQL adapter on the gateway's own schema.

The gateway, `orch keys` and the admin REST routes all go through `PostgresKeyStore`, which
applies the schema's migrations itself on first use (the gateway may start before the database
answers, and `orch keys` may run before any gateway did).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from orchestrator.common.db import create_pool, migrate
from orchestrator.gateway.security.keys import KeyRecord, MintedKey, Scope, normalise_scopes

SCHEMA = "gateway"
MIGRATIONS = "orchestrator.gateway.migrations"
# last_used_at is written at most this often per key (and per gateway replica).
TOUCH_EVERY_SECONDS = 60.0

_COLUMNS = (
    "id, name, secret_sha256, scopes, rate_limit, burst, created_at, expires_at, "
    "last_used_at, revoked_at"
)


class KeyStore(Protocol):
    async def lookup(self, key_id: str, secret_sha256: bytes) -> KeyRecord | None:
        """The key's record; marks it used when `secret_sha256` is its secret's and it is
        in force (at most once a minute)."""
        ...

    async def create(
        self,
        minted: MintedKey,
        *,
        name: str,
        scopes: Sequence[Scope],
        expires_at: datetime | None = None,
        rate_limit: float | None = None,
        burst: int | None = None,
    ) -> KeyRecord: ...

    async def list(self) -> list[KeyRecord]:
        """Every key, revoked ones too, oldest first."""
        ...

    async def get(self, key_id: str) -> KeyRecord | None: ...

    async def revoke(self, key_id: str) -> KeyRecord | None:
        """Revokes the key (again: no change); None when there is no such key."""
        ...


class PostgresKeyStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._migrated = False
        self._migrating = asyncio.Lock()

    async def _ready(self) -> None:
        if self._migrated:
            return
        async with self._migrating:
            if not self._migrated:
                await migrate(self._pool, SCHEMA, MIGRATIONS)
                self._migrated = True

    async def lookup(self, key_id: str, secret_sha256: bytes) -> KeyRecord | None:
        await self._ready()
        # One round trip: the SELECT sees the row as it was before the touch, which is fine.
        row = await self._pool.fetchrow(
            f"""
            WITH touched AS (
                UPDATE {SCHEMA}.api_keys SET last_used_at = now()
                WHERE id = $1 AND secret_sha256 = $2 AND revoked_at IS NULL
                  AND (expires_at IS NULL OR expires_at > now())
                  AND (last_used_at IS NULL
                       OR last_used_at < now() - make_interval(secs => $3))
            )
            SELECT {_COLUMNS} FROM {SCHEMA}.api_keys WHERE id = $1
            """,
            key_id,
            secret_sha256,
            TOUCH_EVERY_SECONDS,
        )
        return _record(row) if row else None

    async def create(
        self,
        minted: MintedKey,
        *,
        name: str,
        scopes: Sequence[Scope],
        expires_at: datetime | None = None,
        rate_limit: float | None = None,
        burst: int | None = None,
    ) -> KeyRecord:
        await self._ready()
        row = await self._pool.fetchrow(
            f"""
            INSERT INTO {SCHEMA}.api_keys
                (id, name, secret_sha256, scopes, expires_at, rate_limit, burst)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            RETURNING {_COLUMNS}
            """,
            minted.id,
            name,
            minted.secret_sha256,
            list(scopes),
            expires_at,
            rate_limit,
            burst,
        )
        assert row is not None
        return _record(row)

    async def list(self) -> list[KeyRecord]:
        await self._ready()
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM {SCHEMA}.api_keys ORDER BY created_at, id"
        )
        return [_record(row) for row in rows]

    async def get(self, key_id: str) -> KeyRecord | None:
        await self._ready()
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM {SCHEMA}.api_keys WHERE id = $1", key_id
        )
        return _record(row) if row else None

    async def revoke(self, key_id: str) -> KeyRecord | None:
        await self._ready()
        row = await self._pool.fetchrow(
            f"""
            UPDATE {SCHEMA}.api_keys SET revoked_at = coalesce(revoked_at, now())
            WHERE id = $1 RETURNING {_COLUMNS}
            """,
            key_id,
        )
        return _record(row) if row else None


@asynccontextmanager
async def open_key_store(database_url: str) -> AsyncIterator[PostgresKeyStore]:
    """A store on its own small pool, for a command (`orch keys`, `orch up`)."""
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        yield PostgresKeyStore(pool)
    finally:
        await pool.close()


def _record(row: Any) -> KeyRecord:
    return KeyRecord(
        id=row["id"],
        name=row["name"],
        scopes=frozenset(normalise_scopes(row["scopes"])),
        secret_sha256=bytes(row["secret_sha256"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
        rate_limit=row["rate_limit"],
        burst=row["burst"],
    )
