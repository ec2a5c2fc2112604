"""The gateway's composition root: `create_app` wires routers, errors and connections.

Nothing connects at import or in `create_app`; the lifespan opens what the caller did not pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from nats.aio.client import Client as NATS
from starlette.middleware.cors import CORSMiddleware

from orchestrator.common.settings import Settings
from orchestrator.gateway.body_limit import BodySizeLimit
from orchestrator.gateway.clients import SERVICE_NAMES, ServiceClients
from orchestrator.gateway.dashboard import mount_dashboard
from orchestrator.gateway.errors import install_error_handlers
from orchestrator.gateway.event_feed import EventFeed
from orchestrator.gateway.observability import install_observability, telemetry_config
from orchestrator.gateway.resources import DEFAULT_EXPECTED_SERVICES, Resources, open_resources
from orchestrator.gateway.routes import (
    agents,
    contexts,
    health,
    keys,
    live,
    sessions,
    task_actions,
    tasks,
)
from orchestrator.gateway.security.middleware import ApiKeyGuard
from orchestrator.gateway.security.openapi import install_security_schema

_DESCRIPTION = """\
REST and WebSocket front of the orchestrator mesh. JSON uses the proto field names; enums are
lowercase names (`"running"`), unset values null, times RFC 3339. Every error is
`{"error": {"code", "message", "field"}}`. Creation returns 201 with the resource, actions
(`POST …/start`) 200 with the updated resource; a few add top-level keys to it: sessions'
`…/retry` `resume_from`, tasks' `…/fail` `will_retry`, agents' `…/heartbeat` `ttl_seconds` and
`expires_at`, contexts' `PATCH` `changes` and `GET …?path=` `path` and `value`.
Lists are `{"<items>": […], "next_page_token", "total_size"}`.
Live events (WebSocket, `?since=<stream seq>`): `/ws/sessions` (all), `/ws/sessions/{id}` (that
session's, its tasks' and its contexts'), `/ws/agents`.

Security: `/api/…` and `/ws/…` need an API key (`orch keys create`) as `Authorization: Bearer
<key>` or `X-API-Key`; a browser's WebSocket offers the subprotocols `orch.events` and
`orch.key.<key>` instead. Scopes: `read` (GET, sockets), `write` (also every other method),
`admin` (also `/api/v1/keys`). 401 without a key in force, 403 without the scope, 429 over the
key's rate limit (`Retry-After`, `RateLimit-*` headers).
"""

# Headers a cross-origin page may read from a reply.
_EXPOSED_HEADERS = ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after"]

_ROUTERS = (
    sessions.router,
    agents.router,
    tasks.router,
    task_actions.router,
    contexts.router,
    live.router,
    health.router,
)


def create_app(
    settings: Settings,
    *,
    clients: ServiceClients | None = None,
    nats: NATS | None = None,
    events: EventFeed | None = None,
    dashboard_dir: Path | None = None,
    expected_services: Sequence[str] = DEFAULT_EXPECTED_SERVICES,
) -> FastAPI:
    """The gateway app. `clients`, `nats` and `events` (an event feed, e.g. a fake) are used as
    given and left open; what is not given is opened from `settings` by the lifespan.
    `expected_services`: the services `/ready` requires (default: all four)."""
    resources = Resources(
        settings,
        expected_services=_known(expected_services),
        clients=clients,
        nats=nats,
        events=events,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await open_resources(resources, stack)
            yield

    app = FastAPI(
        title="Industrial Orchestrator gateway",
        version="1",
        description=_DESCRIPTION,
        lifespan=lifespan,
        telemetry=telemetry_config(),
    )
    app.state.resources = resources
    install_error_handlers(app)
    # The last added runs first: CORS (answers preflights, decorates refusals too), then the
    # key guard, then the body limit (no body is read for a request refused anyway).
    app.add_middleware(BodySizeLimit, max_bytes=settings.gateway_max_body_bytes)
    app.add_middleware(ApiKeyGuard)
    if settings.gateway_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.gateway_cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["authorization", "x-api-key", "content-type"],
            expose_headers=_EXPOSED_HEADERS,
            max_age=600,
        )
    install_security_schema(app, enabled=settings.gateway_auth == "keys")
    for router in _ROUTERS:
        app.include_router(router)
    if settings.gateway_auth == "keys":  # no key management on a gateway that checks none
        app.include_router(keys.router)
    # After every other middleware, so its request metrics wrap them all; before the dashboard,
    # which takes every path left.
    install_observability(app)
    mount_dashboard(app, dashboard_dir)
    return app


def _known(services: Sequence[str]) -> tuple[str, ...]:
    unknown = sorted(set(services) - set(SERVICE_NAMES))
    if unknown:
        raise ValueError(f"unknown services {unknown}; the mesh has {list(SERVICE_NAMES)}")
    return tuple(services)
