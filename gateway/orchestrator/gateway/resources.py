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

log = logging.getLogger(__name__)

# /ready opens at most one PostgreSQL connection; the gateway reads no tables.
_PG_CONNECT_TIMEOUT_SECONDS = 1.0
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
        # min_size=0: nothing connects until /ready asks, so a slow database cannot block startup.
        resources.postgres = await asyncpg.create_pool(
            settings.database_url, min_size=0, max_size=1, timeout=_PG_CONNECT_TIMEOUT_SECONDS
        )
        stack.push_async_callback(resources.postgres.close)
    if resources.events is None:
        log.warning("no NATS configured (ORCH_NATS_URL): live event sockets will refuse clients")


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
