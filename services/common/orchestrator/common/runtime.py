"""The composition root shared by every service process: pools, connections, relay, shutdown.

Nothing connects at import; `Runtime.open` does it all once, in order, and `close` undoes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass

import asyncpg
import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from redis.asyncio import Redis

from orchestrator.common.db import connect, create_pool, migrate
from orchestrator.common.events import ensure_stream
from orchestrator.common.outbox import OutboxRelay
from orchestrator.common.settings import Settings

log = logging.getLogger(__name__)


class ConfigurationError(RuntimeError):
    pass


@dataclass
class Runtime:
    settings: Settings
    schema: str
    pool: asyncpg.Pool
    nc: NATS
    js: JetStreamContext
    redis: Redis
    relay: OutboxRelay

    @classmethod
    async def open(cls, settings: Settings, *, schema: str, migrations: str) -> Runtime:
        if not (settings.database_url and settings.nats_url and settings.redis_url):
            raise ConfigurationError(
                "ORCH_DATABASE_URL, ORCH_NATS_URL and ORCH_REDIS_URL must be set "
                "(`orch up` sets them for the services it starts)"
            )
        pool = await create_pool(
            settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
        )
        await migrate(pool, schema, migrations)
        nc = await connect_nats(settings.nats_url, name=f"orch-{schema}")
        js = nc.jetstream()
        await ensure_stream(
            js,
            settings.stream_name,
            max_age_seconds=settings.stream_max_age_seconds,
            max_bytes=settings.stream_max_bytes,
            replicas=settings.stream_replicas,
        )
        redis = Redis.from_url(settings.redis_url)
        dsn = settings.database_url
        relay = OutboxRelay(lambda: connect(dsn), js, schema, batch_size=settings.outbox_batch_size)
        relay.start()
        return cls(settings, schema, pool, nc, js, redis, relay)

    async def connection(self) -> asyncpg.Connection:
        """A connection of its own, outside the pool, for work that owns session state (a
        session-level lock, LISTEN)."""
        dsn = self.settings.database_url
        assert dsn is not None  # `open` checked it
        return await connect(dsn)

    async def close(self) -> None:
        await self.relay.stop()
        with contextlib.suppress(Exception):
            await self.nc.drain()
        await self.redis.aclose()
        await self.pool.close()


async def connect_nats(url: str, *, name: str) -> NATS:
    """A connection that keeps reconnecting forever: NATS being down only delays events."""
    return await nats.connect(
        url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
    )


# How long after its grace period a service's shutdown may run before it is cut short.
HARD_STOP_SLACK_SECONDS = 20.0


async def wait_for_shutdown_signal(hard_stop_after: float | None = None) -> None:
    """Returns on SIGINT or SIGTERM. With `hard_stop_after`, the process exits by force that
    many seconds later should its clean shutdown not have ended by then (a client stuck
    reconnecting to a server that is gone must not keep it alive)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutdown signal received")
    if hard_stop_after is not None:
        loop.call_later(hard_stop_after, _exit_now, hard_stop_after)


def _exit_now(seconds: float) -> None:
    log.error("shutdown did not finish within %.0f s; exiting now", seconds)
    logging.shutdown()
    os._exit(1)
