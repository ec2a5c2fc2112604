"""Readiness probes used by `orch up`, the gateway's /ready and the tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from orchestrator.common.channels import open_channel
from orchestrator.common.settings import Settings

Probe = Callable[[], Awaitable[bool]]


async def grpc_serving(
    address: str, settings: Settings, within: float = 1.0, service: str = ""
) -> bool:
    """True when the server at `address` answers grpc.health.v1 with SERVING (over TLS when
    the settings say so)."""
    async with open_channel(address, settings) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=within)
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def grpc_probe(address: str, settings: Settings) -> Probe:
    return lambda: grpc_serving(address, settings)


def http_probe(url: str, within: float = 1.0) -> Probe:
    async def check() -> bool:
        async with httpx.AsyncClient(timeout=within) as client:
            try:
                return (await client.get(url)).status_code == 200
            except httpx.HTTPError:
                return False

    return check
