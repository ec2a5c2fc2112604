"""The shared gRPC bootstrap: health, reflection and graceful draining."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import grpc
import pytest
import redis.exceptions
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from orchestrator.api.session.v1 import session_pb2, session_pb2_grpc
from orchestrator.common.grpc_server import GrpcServer
from orchestrator.common.stack import pick_free_port

pytestmark = pytest.mark.timeout(30)


async def test_reflection_lists_the_session_service(session_service: str) -> None:
    async with grpc.aio.insecure_channel(session_service) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call: Any = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        reply = await call.read()
    names = {s.name for s in reply.list_services_response.service}
    assert "orchestrator.session.v1.SessionService" in names
    assert "grpc.health.v1.Health" in names


async def test_health_says_not_serving_while_draining() -> None:
    address = f"127.0.0.1:{pick_free_port()}"
    server = GrpcServer(address)
    await server.start()
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        before = await health.Check(health_pb2.HealthCheckRequest())
        assert before.status == health_pb2.HealthCheckResponse.SERVING
        watch: Any = health.Watch(health_pb2.HealthCheckRequest())
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        stopping = asyncio.create_task(server.stop(grace=2))
        update = await asyncio.wait_for(watch.read(), 5)
        assert update.status == health_pb2.HealthCheckResponse.NOT_SERVING
        await stopping


class _Down(session_pb2_grpc.SessionServiceServicer):
    """A servicer whose every server is down in a different way, or which simply breaks."""

    async def GetSession(self, request: Any, context: Any) -> Any:
        raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")

    async def ListSessions(self, request: Any, context: Any) -> Any:
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379")

    async def StartSession(self, request: Any, context: Any) -> Any:
        raise ConnectionRefusedError(111, "Connection refused")

    async def StopSession(self, request: Any, context: Any) -> Any:
        raise ValueError("a bug, not an outage")


async def test_a_server_that_cannot_be_reached_makes_the_call_unavailable() -> None:
    address = f"127.0.0.1:{pick_free_port()}"
    server = GrpcServer(address)
    down = _Down()  # type: ignore[abstract]
    server.add(session_pb2_grpc.add_SessionServiceServicer_to_server, down, "down")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            stub: Any = session_pb2_grpc.SessionServiceStub(channel)
            said: dict[str, tuple[Any, str]] = {}
            for name, request in [
                ("GetSession", session_pb2.GetSessionRequest()),
                ("ListSessions", session_pb2.ListSessionsRequest()),
                ("StartSession", session_pb2.StartSessionRequest()),
                ("StopSession", session_pb2.StopSessionRequest()),
            ]:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await getattr(stub, name)(request)
                said[name] = (err.value.code(), err.value.details() or "")
    finally:
        await server.stop(grace=1)
    # Callers retry UNAVAILABLE; an internal error they would take as final.
    assert said["GetSession"] == (
        grpc.StatusCode.UNAVAILABLE,
        "PostgreSQL cannot be reached right now (CannotConnectNowError); retry",
    )
    assert said["ListSessions"][0] == grpc.StatusCode.UNAVAILABLE
    assert said["ListSessions"][1].startswith("Redis cannot be reached")
    assert said["StartSession"][0] == grpc.StatusCode.UNAVAILABLE
    assert said["StopSession"][0] == grpc.StatusCode.UNKNOWN
