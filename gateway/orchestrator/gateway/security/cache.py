"""Authenticates presented keys against the store, remembering each record for a few seconds.

A request never waits on PostgreSQL for a key looked up less than `ttl` seconds ago (by this
gateway); so a key revoked elsewhere stops working here within `ttl` (5 s by default), on
every replica alike, since each only trusts its own lookups that long. Concurrent requests with
a key not yet known share one lookup. Unknown ids are remembered too, so a client retrying a
bad key does not reach the database on every request.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from orchestrator.gateway.security.keys import (
    KeyRecord,
    PresentedKey,
    Refusal,
    Scope,
    granted,
    parse,
    refusal_of,
)
from orchestrator.gateway.security.store import KeyStore

MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: an authenticated key."""

    key_id: str
    name: str
    scopes: frozenset[Scope]  # implied ones included
    rate_limit: float | None
    burst: int | None


class Unauthenticated(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal


class KeysUnavailable(Exception):
    """The key store could not be asked (PostgreSQL down): nothing new is let in."""


@dataclass
class _Entry:
    record: KeyRecord | None
    fetched: float


class KeyCache:
    def __init__(
        self,
        store: KeyStore,
        ttl: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self._clock = clock
        self._now = now
        self._max = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._loading: dict[str, asyncio.Future[KeyRecord | None]] = {}

    async def authenticate(self, presented: str | None) -> Principal:
        """The principal of a key in force; raises Unauthenticated or KeysUnavailable."""
        if not presented:
            raise Unauthenticated(Refusal.MISSING)
        parsed = parse(presented)
        if parsed is None:
            raise Unauthenticated(Refusal.MALFORMED)
        record = await self._record(parsed)
        refusal = refusal_of(record, parsed, self._now())
        if refusal is not None or record is None:
            raise Unauthenticated(refusal or Refusal.UNKNOWN)
        return Principal(
            key_id=record.id,
            name=record.name,
            scopes=granted(record.scopes),
            rate_limit=record.rate_limit,
            burst=record.burst,
        )

    def forget(self, key_id: str) -> None:
        """Drops what is known of a key (this gateway revoked it: no need to wait)."""
        self._entries.pop(key_id, None)

    async def _record(self, presented: PresentedKey) -> KeyRecord | None:
        entry = self._entries.get(presented.id)
        if entry is not None and self._clock() - entry.fetched < self.ttl:
            return entry.record
        load = self._loading.get(presented.id)
        if load is None:
            load = asyncio.ensure_future(self._load(presented))
            self._loading[presented.id] = load
            load.add_done_callback(lambda _: self._loading.pop(presented.id, None))
        try:
            # Shielded: a client hanging up does not cancel the lookup others wait on.
            return await asyncio.shield(load)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise KeysUnavailable(f"API keys cannot be checked: {type(exc).__name__}") from exc

    async def _load(self, presented: PresentedKey) -> KeyRecord | None:
        record = await self.store.lookup(presented.id, presented.secret_sha256)
        self._entries[presented.id] = _Entry(record, self._clock())
        self._entries.move_to_end(presented.id)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return record
