"""API keys against the real servers: the PostgreSQL store (hashes only, last use to the minute,
revocation), the Redis token bucket shared by replicas (and failing open), and `orch keys` as a
user runs it."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from orchestrator.common.settings import Settings
from orchestrator.common.stack import pick_free_port
from orchestrator.gateway.security.cache import KeyCache
from orchestrator.gateway.security.keys import mint, parse
from orchestrator.gateway.security.rate_limit import RedisRateLimiter
from orchestrator.gateway.security.store import SCHEMA, PostgresKeyStore

pytestmark = pytest.mark.timeout(60)

ORCH = [sys.executable, "-c", "from orchestrator.cli.main import main; main()", "keys"]


@pytest.fixture
def store(pool: asyncpg.Pool) -> PostgresKeyStore:
    return PostgresKeyStore(pool)


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(str(settings.redis_url))
    yield client
    await client.aclose()


async def test_the_store_keeps_a_hash_and_finds_the_key_by_its_id(
    store: PostgresKeyStore, pool: asyncpg.Pool
) -> None:
    minted = mint()
    record = await store.create(minted, name="ci", scopes=["read", "write"], burst=7)
    assert record.scopes == {"read", "write"} and record.burst == 7 and record.rate_limit is None
    row = await pool.fetchrow(f"SELECT * FROM {SCHEMA}.api_keys WHERE id = $1", minted.id)
    assert row is not None
    secret = minted.plaintext.rsplit("_", 1)[1]
    assert secret not in repr(dict(row)) and secret.encode() not in bytes(row["secret_sha256"])
    assert row["last_used_at"] is None

    presented = parse(minted.plaintext)
    assert presented is not None
    found = await store.lookup(presented.id, presented.secret_sha256)
    assert found is not None and found.secret_sha256 == minted.secret_sha256
    used = await store.get(minted.id)
    assert used is not None and used.last_used_at is not None
    # Within the minute, another lookup does not write again.
    await store.lookup(presented.id, presented.secret_sha256)
    again = await store.get(minted.id)
    assert again is not None and again.last_used_at == used.last_used_at
    # A wrong secret is no use: it does not count as one.
    other = await store.create(mint(), name="unused", scopes=["read"])
    await store.lookup(other.id, minted.secret_sha256)
    assert (await store.get(other.id)).last_used_at is None  # type: ignore[union-attr]


async def test_revocation_is_seen_by_every_cache_within_its_ttl(store: PostgresKeyStore) -> None:
    minted = mint()
    await store.create(minted, name="replicated", scopes=["admin"])
    replicas = [KeyCache(store, ttl=0.3), KeyCache(store, ttl=0.3)]
    for cache in replicas:
        assert (await cache.authenticate(minted.plaintext)).scopes == {"read", "write", "admin"}
    revoked = await store.revoke(minted.id)
    assert revoked is not None and revoked.revoked_at is not None
    assert (await store.revoke(minted.id)).revoked_at == revoked.revoked_at  # type: ignore[union-attr]
    assert await store.revoke("0123456789abcdef") is None
    await asyncio.sleep(0.35)
    for cache in replicas:
        with pytest.raises(Exception, match="revoked"):
            await cache.authenticate(minted.plaintext)
    assert minted.id in [r.id for r in await store.list()]


async def test_the_bucket_is_shared_by_replicas_and_refills(redis: Redis) -> None:
    key_id = mint().id
    replicas = [RedisRateLimiter(redis), RedisRateLimiter(redis)]
    quotas = [await replicas[i % 2].take(key_id, rate=20.0, burst=4) for i in range(5)]
    assert [q.allowed for q in quotas if q] == [True, True, True, True, False]
    assert [q.remaining for q in quotas if q] == [3, 2, 1, 0, 0]
    refused = quotas[-1]
    assert refused is not None and refused.retry_after_seconds == 1 and refused.limit == 4
    await asyncio.sleep(0.12)  # 20/s: two tokens back
    again = await replicas[0].take(key_id, rate=20.0, burst=4)
    assert again is not None and again.allowed
    # The bucket expires once it would be full again: nothing is left behind in Redis.
    ttl_ms = await redis.pttl(f"orch:gateway:ratelimit:{key_id}")
    assert 0 < ttl_ms <= 1300


async def test_without_redis_the_limiter_fails_open_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gone = Redis.from_url(f"redis://127.0.0.1:{pick_free_port()}", socket_connect_timeout=0.5)
    limiter = RedisRateLimiter(gone)
    caplog.set_level(logging.WARNING, logger="orchestrator.gateway.security.rate_limit")
    assert await limiter.take("k", rate=1.0, burst=1) is None
    started = time.monotonic()
    assert await limiter.take("k", rate=1.0, burst=1) is None  # not tried again for 5 s
    assert time.monotonic() - started < 0.05
    warnings = [r for r in caplog.records if "rate limits not enforced" in r.getMessage()]
    assert len(warnings) == 1
    await gone.aclose()


async def _orch(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *ORCH,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_orch_keys_create_list_revoke(
    settings: Settings, tmp_path: Path, store: PostgresKeyStore
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update(ORCH_DATABASE_URL=str(settings.database_url), ORCH_DATA_DIR=str(tmp_path))
    name = f"cli-{mint().id}"
    code, out, err = await _orch(
        env,
        "create",
        "--name",
        name,
        "--scope",
        "read,write",
        "--expires-in",
        "30d",
        "--burst",
        "5",
    )
    assert code == 0, err
    key = out.strip()
    presented = parse(key)
    assert presented is not None, out
    assert f"created key {presented.id} ({name}; read, write" in err and "not shown again" in err
    cache = KeyCache(store, ttl=0)
    principal = await cache.authenticate(key)
    assert principal.scopes == {"read", "write"} and principal.burst == 5

    code, out, err = await _orch(env, "list")
    assert code == 0, err
    row = next(line for line in out.splitlines() if presented.id in line)
    assert name in row and "read,write" in row and "active" in row and "burst 5" in row
    assert key.rsplit("_", 1)[1] not in out

    code, out, err = await _orch(env, "revoke", presented.id)
    assert code == 0 and f"revoked key {presented.id} ({name})" in out, err
    code, out, _ = await _orch(env, "list")
    assert "revoked" in next(line for line in out.splitlines() if presented.id in line)

    code, _, err = await _orch(env, "revoke", "0123456789abcdef")
    assert code == 1 and err.strip() == "orch keys: no key 0123456789abcdef"
    code, _, err = await _orch(env, "create", "--name", "x", "--scope", "root")
    assert code == 1 and "unknown scope 'root'" in err and "Traceback" not in err
    code, _, err = await _orch(
        env, "create", "--name", "x", "--scope", "read", "--expires-in", "1y"
    )
    assert code == 1 and "not a duration" in err


async def test_orch_keys_without_a_database_says_how_to_get_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env["ORCH_DATA_DIR"] = str(tmp_path)
    code, _, err = await _orch(env, "list")
    assert code == 1 and "no database" in err and "orch up" in err
    env["ORCH_DATABASE_URL"] = f"postgresql://nobody@127.0.0.1:{pick_free_port()}/none"
    code, _, err = await _orch(env, "list")
    assert code == 1 and "cannot be reached" in err and "Traceback" not in err


async def test_orch_up_keeps_its_admin_key_until_it_is_revoked(
    settings: Settings, tmp_path: Path, store: PostgresKeyStore
) -> None:
    from orchestrator.cli.up import BOOTSTRAP_KEY_FILE, bootstrap_key

    mine = settings.model_copy(update={"data_dir": tmp_path, "gateway_auth": "keys"})
    first = await bootstrap_key(mine, str(settings.database_url))
    assert first is not None and parse(first) is not None
    path = tmp_path / BOOTSTRAP_KEY_FILE
    assert path.read_text().strip() == first and path.stat().st_mode & 0o777 == 0o600
    assert await bootstrap_key(mine, str(settings.database_url)) == first
    principal = await KeyCache(store, ttl=0).authenticate(first)
    assert principal.scopes == {"read", "write", "admin"}
    await store.revoke(principal.key_id)
    second = await bootstrap_key(mine, str(settings.database_url))
    assert second not in (None, first) and path.read_text().strip() == second
    off = mine.model_copy(update={"gateway_auth": "off"})
    assert await bootstrap_key(off, str(settings.database_url)) is None
