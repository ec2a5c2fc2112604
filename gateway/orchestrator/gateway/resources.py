"""The gateway's outside connections: opened by the app's lifespan, reached through dependencies.

Whatever the caller hands to `create_app` (in-process fakes, a test's NATS client) is used as is
and left open; whatever the lifespan opens itself, it closes.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass, fields, replace
from typing import Annotated, cast

import asyncpg
from fastapi import Depends, HTTPException
from nats.aio.client import Client as NATS
from redis.asyncio import Redis
from starlette.requests import HTTPConnection

from orchestrator.common.runtime import connect_nats
from orchestrator.common.settings import Settings
from orchestrator.gateway.clients import SERVICE_NAMES, ServiceClients
from orchestrator.gateway.event_feed import EventFeed, JetStreamFeed
from orchestrator.gateway.security.cache import KeyCache
from orchestrator.gateway.security.rate_limit import RateLimiter, RedisRateLimiter
from orchestrator.gateway.security.store import KeyStore, PostgresKeyStore

log = logging.getLogger(__name__)

# PostgreSQL serves /ready and API key lookups (a few per key every few seconds: they are cached).
_PG_CONNECT_TIMEOUT_SECONDS = 1.0
_PG_COMMAND_TIMEOUT_SECONDS = 5.0
_PG_POOL_MAX = 4
# The services /ready requires by default: the whole mesh. `create_app(expected_services=…)`
# narrows it, e.g. for a gateway in front of part of the mesh.
DEFAULT_EXPECTED_SERVICES: tuple[str, ...] = SERVICE_NAMES


@dataclass
class Resources:
    settings: Settings
    expected_services: tuple[str, ...] = DEFAULT_EXPECTED_SERVICES
    clients: ServiceClients | None = None
    nats: NATS | None = None
    events: EventFeed | None = None
    redis: Redis | None = None
    postgres: asyncpg.Pool | None = None
    # API keys (ORCH_GATEWAY_AUTH=keys): the store, the cached lookups, the per-key limits.
    api_keys: KeyStore | None = None
    authenticator: KeyCache | None = None
    rate_limiter: RateLimiter | None = None


async def open_resources(resources: Resources, stack: AsyncExitStack) -> None:
    """Fills in what the caller did not provide; closing `stack` closes exactly those."""
    settings = resources.settings
    given = replace(resources)
    # Runs last: forgets the closed connections, so a later lifespan opens fresh ones.
    stack.callback(_restore, resources, given)
    if resources.clients is None:
        resources.clients = ServiceClients.connect(settings)
        stack.push_async_callback(resources.clients.close)
    if resources.nats is None and resources.events is None and settings.nats_url:
        resources.nats = await connect_nats(settings.nats_url, name="orch-gateway")
        stack.push_async_callback(resources.nats.drain)
    if resources.events is None and resources.nats is not None:
        resources.events = JetStreamFeed(resources.nats.jetstream(), settings.stream_name)
    if resources.redis is None and settings.redis_url:
        resources.redis = Redis.from_url(
            settings.redis_url, socket_connect_timeout=1.0, socket_timeout=1.0
        )
        stack.push_async_callback(resources.redis.aclose)
    if resources.postgres is None and settings.database_url:
        # min_size=0: nothing connects until /ready or a key lookup asks, so a slow database
        # cannot block startup.
        resources.postgres = await asyncpg.create_pool(
            settings.database_url,
            min_size=0,
            max_size=_PG_POOL_MAX,
            timeout=_PG_CONNECT_TIMEOUT_SECONDS,
            command_timeout=_PG_COMMAND_TIMEOUT_SECONDS,
        )
        stack.push_async_callback(resources.postgres.close)
    _open_security(resources)
    if resources.events is None:
        log.warning("no NATS configured (ORCH_NATS_URL): live event sockets will refuse clients")


def _open_security(resources: Resources) -> None:
    settings = resources.settings
    if settings.gateway_auth == "off":
        log.warning("ORCH_GATEWAY_AUTH=off: the API and its sockets need no key")
        return
    if resources.api_keys is None and resources.postgres is not None:
        resources.api_keys = PostgresKeyStore(resources.postgres)
    if resources.authenticator is None and resources.api_keys is not None:
        resources.authenticator = KeyCache(resources.api_keys, settings.gateway_key_cache_seconds)
    if resources.rate_limiter is None and resources.redis is not None:
        resources.rate_limiter = RedisRateLimiter(resources.redis)
    if resources.authenticator is None:
        log.warning("no PostgreSQL configured (ORCH_DATABASE_URL): the API refuses every key")


def _restore(resources: Resources, given: Resources) -> None:
    for field in fields(Resources):
        setattr(resources, field.name, getattr(given, field.name))


def get_resources(connection: HTTPConnection) -> Resources:
    return cast(Resources, connection.app.state.resources)


def get_clients(connection: HTTPConnection) -> ServiceClients:
    clients = get_resources(connection).clients
    if clients is None:
        raise HTTPException(503, "the gateway is still starting")
    return clients


ResourcesDep = Annotated[Resources, Depends(get_resources)]
ClientsDep = Annotated[ServiceClients, Depends(get_clients)]
