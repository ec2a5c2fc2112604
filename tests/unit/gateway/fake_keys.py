"""In-memory fakes of the API key store and the rate limiter (the real ones are tested against
PostgreSQL and Redis in tests/integration/test_api_keys.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime

from orchestrator.gateway.security.keys import KeyRecord, MintedKey, Scope, mint
from orchestrator.gateway.security.rate_limit import Quota, quota_of


class FakeKeyStore:
    def __init__(self) -> None:
        self.records: dict[str, KeyRecord] = {}
        self.lookups = 0
        self.fail_with: Exception | None = None

    async def lookup(self, key_id: str, secret_sha256: bytes) -> KeyRecord | None:
        self.lookups += 1
        if self.fail_with is not None:
            raise self.fail_with
        return self.records.get(key_id)

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
        record = KeyRecord(
            id=minted.id,
            name=name,
            scopes=frozenset(scopes),
            secret_sha256=minted.secret_sha256,
            created_at=datetime.now(UTC),
            expires_at=expires_at,
            rate_limit=rate_limit,
            burst=burst,
        )
        self.records[record.id] = record
        return record

    async def list(self) -> list[KeyRecord]:
        return sorted(self.records.values(), key=lambda r: r.created_at)

    async def get(self, key_id: str) -> KeyRecord | None:
        return self.records.get(key_id)

    async def revoke(self, key_id: str) -> KeyRecord | None:
        record = self.records.get(key_id)
        if record is None:
            return None
        if record.revoked_at is None:
            record = dataclasses.replace(record, revoked_at=datetime.now(UTC))
            self.records[key_id] = record
        return record

    async def add(self, name: str, *scopes: Scope, **fields: object) -> str:
        """A new key in force with these scopes; returns the key itself."""
        minted = mint()
        await self.create(minted, name=name, scopes=scopes, **fields)  # type: ignore[arg-type]
        return minted.plaintext


class FakeRateLimiter:
    """A bucket per key that only empties: `burst` requests pass, then every one is refused."""

    def __init__(self) -> None:
        self.taken: dict[str, int] = {}
        self.unavailable = False

    async def take(self, key_id: str, rate: float, burst: int) -> Quota | None:
        if self.unavailable:
            return None
        used = self.taken.get(key_id, 0)
        if used >= burst:
            return quota_of(False, 0.0, 1.0 / rate, rate, burst)
        self.taken[key_id] = used + 1
        return quota_of(True, float(burst - used - 1), 0.0, rate, burst)
