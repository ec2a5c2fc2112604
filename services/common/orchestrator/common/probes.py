"""Readiness probes used by `orch up`, the gateway's /ready and the tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

Probe = Callable[[], Awaitable[bool]]


async def grpc_serving(address: str, within: float = 1.0, service: str = "") -> bool:
    """True when the server at `address` answers grpc.health.v1 with SERVING."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=within)
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def grpc_probe(address: str) -> Probe:
    return lambda: grpc_serving(address)


def http_probe(url: str, within: float = 1.0) -> Probe:
    async def check() -> bool:
        async with httpx.AsyncClient(timeout=within) as client:
            try:
                return (await client.get(url)).status_code == 200
            except httpx.HTTPError:
                return False

    return check
