"""/health, /live and /ready, with fakes for every dependency the readiness probes ask."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI
from grpc_health.v1 import health_pb2

from orchestrator.common.settings import Settings
from orchestrator.gateway.app import create_app
from orchestrator.gateway.clients import SERVICE_NAMES, ServiceClients
from orchestrator.gateway.resources import Resources

if TYPE_CHECKING:
    from tests.unit.gateway.conftest import FakeSessionStub

pytestmark = pytest.mark.timeout(30)


class _Postgres:
    def __init__(self) -> None:
        self.broken = False

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[_Postgres]:
        if self.broken:
            raise ConnectionRefusedError("connection refused")
        yield self

    async def fetchval(self, query: str) -> int:
        return 1


class _Redis:
    async def ping(self) -> bool:
        return True


class _JetStream:
    async def account_info(self) -> object:
        return object()


class _Nats:
    is_connected = True

    def jetstream(self) -> _JetStream:
        return _JetStream()


class _HealthChannel:
    """Answers grpc.health.v1 Check like a channel would; `hang` simulates a stuck server."""

    def __init__(self, status: int, *, hang: bool = False) -> None:
        self.status = status
        self.hang = hang

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        async def call(request: Any, timeout: float | None = None) -> Any:
            if self.hang:
                await asyncio.Event().wait()
            return health_pb2.HealthCheckResponse(status=self.status)

        return call

    unary_stream = unary_unary


@pytest.fixture
def healthy(app: FastAPI, session_stub: FakeSessionStub) -> Resources:
    resources: Resources = app.state.resources
    resources.postgres = _Postgres()  # type: ignore[assignment]
    resources.redis = _Redis()  # type: ignore[assignment]
    resources.nats = _Nats()  # type: ignore[assignment]
    assert resources.clients is not None
    for name in SERVICE_NAMES:
        resources.clients.channels[name] = _HealthChannel(  # type: ignore[assignment]
            health_pb2.HealthCheckResponse.SERVING
        )
    return resources


async def test_health_and_live_say_ok(client: httpx.AsyncClient) -> None:
    for path in ("/health", "/live"):
        response = await client.get(path)
        assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_ready_when_every_check_passes(client: httpx.AsyncClient, healthy: Resources) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {
            name: {"status": "ok"} for name in ("postgres", "redis", "nats", *SERVICE_NAMES)
        },
    }


async def test_not_ready_names_the_failing_checks(
    client: httpx.AsyncClient, healthy: Resources
) -> None:
    healthy.postgres.broken = True  # type: ignore[union-attr]
    assert healthy.clients is not None
    healthy.clients.channels["session"] = _HealthChannel(  # type: ignore[assignment]
        health_pb2.HealthCheckResponse.NOT_SERVING
    )
    response = await client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["postgres"] == {"status": "failing", "reason": "connection refused"}
    assert body["checks"]["session"] == {"status": "failing", "reason": "NOT_SERVING"}
    assert body["checks"]["redis"] == {"status": "ok"}


async def test_a_hanging_service_fails_its_check_within_the_deadline(
    client: httpx.AsyncClient, healthy: Resources
) -> None:
    assert healthy.clients is not None
    healthy.clients.channels["session"] = _HealthChannel(0, hang=True)  # type: ignore[assignment]
    response = await asyncio.wait_for(client.get("/ready"), timeout=3)
    assert response.status_code == 503
    assert "no answer" in response.json()["checks"]["session"]["reason"]


async def test_unconfigured_dependencies_fail_readiness(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["nats"]["reason"] == "not configured (ORCH_NATS_URL)"
    assert set(checks) == {"postgres", "redis", "nats", "session", "agent", "task", "context"}
    assert checks["context"]["reason"] == "no channel to the context service"


async def test_the_expected_services_are_configurable(
    settings: Settings, clients: ServiceClients
) -> None:
    app = create_app(settings, clients=clients, expected_services=["session", "task"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        checks = (await http.get("/ready")).json()["checks"]
    assert set(checks) == {"postgres", "redis", "nats", "session", "task"}


def test_an_unknown_expected_service_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="billing"):
        create_app(settings, expected_services=["session", "billing"])
