"""API keys, pure: format, hashing, refusals, scopes, durations, which request needs what, and
the cache in front of the store (TTL, negative entries, shared lookups, an unreachable store)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.gateway.security.cache import KeyCache, KeysUnavailable, Unauthenticated
from orchestrator.gateway.security.keys import (
    KeyRecord,
    Refusal,
    granted,
    mint,
    normalise_scopes,
    parse,
    parse_duration,
    refusal_of,
)
from orchestrator.gateway.security.logs import RedactSecrets
from orchestrator.gateway.security.policy import required_scope
from tests.unit.gateway.fake_keys import FakeKeyStore

pytestmark = pytest.mark.timeout(30)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _record(**changes: object) -> tuple[str, KeyRecord]:
    minted = mint()
    record = KeyRecord(
        id=minted.id,
        name="ci",
        scopes=frozenset({"read"}),
        secret_sha256=minted.secret_sha256,
        created_at=NOW,
    )
    return minted.plaintext, dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def test_a_minted_key_parses_back_to_its_id_and_hash_and_is_not_stored_in_clear() -> None:
    minted = mint()
    assert minted.plaintext.startswith(f"orch_{minted.id}_")
    assert len(minted.plaintext) == len("orch_") + 16 + 1 + 64
    presented = parse(minted.plaintext)
    assert presented is not None
    assert (presented.id, presented.secret_sha256) == (minted.id, minted.secret_sha256)
    assert minted.plaintext.split("_")[2].encode() not in minted.secret_sha256
    assert mint().id != minted.id


@pytest.mark.parametrize(
    "text",
    ["", "orch_", "Bearer x", "orch_0123456789abcdef_short", "orch_0123456789ABCDEF_" + "a" * 64],
)
def test_anything_but_a_key_is_malformed(text: str) -> None:
    assert parse(text) is None


def test_refusals_say_why() -> None:
    key, record = _record()
    presented = parse(key)
    assert presented is not None
    assert refusal_of(record, presented, NOW) is None
    assert refusal_of(None, presented, NOW) is Refusal.UNKNOWN
    wrong = parse(mint().plaintext.replace(mint().id, record.id, 1))
    other_secret = dataclasses.replace(presented, secret_sha256=b"x" * 32)
    assert wrong is not None
    assert refusal_of(record, other_secret, NOW) is Refusal.UNKNOWN
    revoked = dataclasses.replace(record, revoked_at=NOW)
    assert refusal_of(revoked, presented, NOW) is Refusal.REVOKED
    expired = dataclasses.replace(record, expires_at=NOW)
    assert refusal_of(expired, presented, NOW) is Refusal.EXPIRED
    later = dataclasses.replace(record, expires_at=NOW + timedelta(seconds=1))
    assert refusal_of(later, presented, NOW) is None
    assert (revoked.status(NOW), expired.status(NOW), later.status(NOW)) == (
        "revoked",
        "expired",
        "active",
    )


def test_scopes_include_the_ones_below_them() -> None:
    assert granted(["read"]) == {"read"}
    assert granted(["write"]) == {"read", "write"}
    assert granted(["admin"]) == {"read", "write", "admin"}
    assert granted([]) == frozenset()
    assert normalise_scopes(["admin", " READ", "read"]) == ("read", "admin")
    with pytest.raises(ValueError, match="unknown scope 'root'"):
        normalise_scopes(["root"])
    with pytest.raises(ValueError, match="at least one"):
        normalise_scopes([" "])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90d", 90 * 86400),
        ("12h", 43200),
        ("30m", 1800),
        ("3600s", 3600),
        ("45", 45),
        ("2w", 1209600),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["0d", "-1h", "soon", "1y", ""])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("kind", "method", "path", "needed"),
    [
        ("http", "GET", "/health", None),
        ("http", "GET", "/ready", None),
        ("http", "GET", "/live", None),
        ("http", "GET", "/metrics", None),
        ("http", "GET", "/openapi.json", None),
        ("http", "GET", "/docs", None),
        ("http", "GET", "/", None),
        ("http", "GET", "/sessions/123", None),  # a dashboard page
        ("http", "GET", "/assets/index.js", None),
        ("http", "GET", "/api/v1/sessions", "read"),
        ("http", "HEAD", "/api/v1/sessions", "read"),
        ("http", "POST", "/api/v1/sessions", "write"),
        ("http", "PATCH", "/api/v1/contexts/x", "write"),
        ("http", "DELETE", "/api/v1/agents/x", "write"),
        ("http", "GET", "/api/v1/keys", "admin"),
        ("http", "POST", "/api/v1/keys", "admin"),
        ("http", "DELETE", "/api/v1/keys/abc", "admin"),
        ("http", "GET", "/api/v1/keysmith", "read"),
        ("http", "GET", "/api/unknown", "read"),
        ("http", "GET", "/api", "read"),
        ("websocket", "GET", "/ws/sessions", "read"),
        ("websocket", "GET", "/ws/anything", "read"),
    ],
)
def test_which_scope_a_request_needs(kind: str, method: str, path: str, needed: str) -> None:
    assert required_scope(kind, method, path) == needed


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_cache_asks_the_store_once_per_ttl_and_then_sees_a_revocation() -> None:
    store, clock = FakeKeyStore(), Clock()
    key = await store.add("ci", "write")
    cache = KeyCache(store, ttl=5.0, clock=clock)
    principal = await cache.authenticate(key)
    assert principal.scopes == {"read", "write"} and principal.name == "ci"
    for _ in range(10):
        await cache.authenticate(key)
    assert store.lookups == 1
    await store.revoke(principal.key_id)
    clock.now = 4.9
    await cache.authenticate(key)  # still trusted: within the TTL
    clock.now = 5.0
    with pytest.raises(Unauthenticated) as refused:
        await cache.authenticate(key)
    assert refused.value.refusal is Refusal.REVOKED
    assert store.lookups == 2


async def test_forget_makes_a_revocation_immediate_here() -> None:
    store = FakeKeyStore()
    key = await store.add("ci", "read")
    cache = KeyCache(store, ttl=60.0)
    principal = await cache.authenticate(key)
    await store.revoke(principal.key_id)
    cache.forget(principal.key_id)
    with pytest.raises(Unauthenticated):
        await cache.authenticate(key)


async def test_missing_malformed_unknown_and_wrong_secret_are_refused() -> None:
    store, clock = FakeKeyStore(), Clock()
    key = await store.add("ci", "read")
    cache = KeyCache(store, ttl=5.0, clock=clock)
    for presented, refusal in [
        (None, Refusal.MISSING),
        ("", Refusal.MISSING),
        ("hunter2", Refusal.MALFORMED),
        (mint().plaintext, Refusal.UNKNOWN),
        (key[:-4] + "0000" if not key.endswith("0000") else key[:-4] + "1111", Refusal.UNKNOWN),
    ]:
        with pytest.raises(Unauthenticated) as refused:
            await cache.authenticate(presented)
        assert refused.value.refusal is refusal
    # Unknown ids are remembered too: retrying a bad key does not reach the store.
    stranger = mint().plaintext
    before = store.lookups
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            await cache.authenticate(stranger)
    assert store.lookups == before + 1


async def test_concurrent_requests_share_one_lookup() -> None:
    store = FakeKeyStore()
    key = await store.add("ci", "read")
    cache = KeyCache(store, ttl=5.0)
    await asyncio.gather(*(cache.authenticate(key) for _ in range(20)))
    assert store.lookups == 1


async def test_an_unreachable_store_refuses_to_guess() -> None:
    store = FakeKeyStore()
    key = await store.add("ci", "read")
    store.fail_with = ConnectionRefusedError("db down")
    cache = KeyCache(store, ttl=5.0)
    with pytest.raises(KeysUnavailable):
        await cache.authenticate(key)
    store.fail_with = None
    assert (await cache.authenticate(key)).name == "ci"


async def test_expiry_is_checked_on_every_request_even_from_the_cache() -> None:
    store = FakeKeyStore()
    now = [NOW]
    key = await store.add("ci", "read", expires_at=NOW + timedelta(seconds=30))
    cache = KeyCache(store, ttl=300.0, now=lambda: now[0])
    await cache.authenticate(key)
    now[0] = NOW + timedelta(seconds=30)
    with pytest.raises(Unauthenticated) as refused:
        await cache.authenticate(key)
    assert refused.value.refusal is Refusal.EXPIRED


def test_the_log_filter_redacts_keys_and_credentials_headers() -> None:
    key = mint().plaintext
    secret = key.rsplit("_", 1)[1]
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "GET %s HTTP/1.1" %d',
        ("127.0.0.1", f"/api/v1/sessions?api_key={key}", 401), None,
    )  # fmt: skip
    headers = logging.LogRecord(
        "websockets.server", logging.DEBUG, __file__, 1, "< %s: %s",
        ("Authorization", "Bearer not-even-a-key"), None,
    )  # fmt: skip
    protocols = logging.LogRecord(
        "websockets.server", logging.DEBUG, __file__, 1, "< Sec-WebSocket-Protocol: %s",
        (f"orch.events, orch.key.{key}",), None,
    )  # fmt: skip
    redact = RedactSecrets()
    for item in (record, headers, protocols):
        assert redact.filter(item) is True
    assert secret not in record.getMessage() and "orch_" in record.getMessage()
    assert "not-even-a-key" not in headers.getMessage()
    assert secret not in protocols.getMessage()
