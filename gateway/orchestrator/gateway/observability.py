"""The gateway's share of observability: request metrics, `/metrics`, and request spans.

Request durations are recorded by route template (`/api/v1/sessions/{session_id}/start`), never
the raw path, so ids do not make a series each; requests no route served count as `unmatched`
(a refusal by the key guard, say, or an unknown path).
`/metrics` serves this process's registry on the gateway's own port, with no key (like /health).
"""

from __future__ import annotations

import time

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.common.metrics import HTTP_DURATION
from orchestrator.common.telemetry import tracer_provider

METRICS_PATH = "/metrics"
# Probes and scrapes would drown the requests worth tracing.
_UNTRACED = frozenset({"/health", "/live", "/ready", METRICS_PATH})


# The scope entry where the innermost layer notes the route that served a request: layers
# between may route a copy of the scope, but the copy shares this dict.
_NOTE = "orch.route"


class RequestMetrics:
    """Pure ASGI, outermost: it sees every answer, refusals by the key guard included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless an answer starts
        note: dict[str, str] = {}
        scope[_NOTE] = note

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            HTTP_DURATION.labels(
                note.get("route", "unmatched"), scope["method"], str(status)
            ).observe(time.perf_counter() - started)


class RouteNote:
    """Innermost: after routing, notes the template of the route that served the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            note = scope.get(_NOTE)
            route = scope.get("route")
            if note is not None and route is not None:
                note["route"] = getattr(route, "path", "") or "/"


async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def telemetry_config() -> TelemetryConfig:
    """FastAPI's own request spans (their trace continued from the caller's `traceparent`,
    current while the route calls the services) when spans are made, none otherwise. Probes
    and scrapes are left out; FastAPI's metrics and logs are not used (Prometheus and our
    JSON lines are)."""
    provider = tracer_provider()
    if provider is None:
        return {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    return {
        "tracer_provider": provider,
        "metrics": False,
        "logs": False,
        "exclude": lambda scope: scope.get("path") in _UNTRACED,
    }


def install_observability(app: FastAPI) -> None:
    """`/metrics` and request metrics (call after every other middleware, so these wrap them
    all)."""
    app.add_api_route(METRICS_PATH, metrics, include_in_schema=False, response_class=Response)
    app.add_middleware(RequestMetrics)  # the outermost
    app.user_middleware.append(Middleware(RouteNote))  # the innermost
