"""The shared gRPC bootstrap: health, reflection and graceful draining."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

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
