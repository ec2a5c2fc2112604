"""Readiness: PostgreSQL, Redis, NATS and each expected gRPC service, probed concurrently.

Every probe gets the same short deadline, so /ready answers within about a second even when
something hangs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from orchestrator.gateway.resources import Resources

PROBE_TIMEOUT_SECONDS = 1.0

Probe = Callable[[], Awaitable[None]]


class ProbeFailed(Exception):
    pass


async def check_all(resources: Resources) -> dict[str, Any]:
    """`{name: {"status": "ok"}}` or `{name: {"status": "failing", "reason": …}}` per check."""
    probes = _probes(resources, resources.expected_services)
    results = await asyncio.gather(*(_run(probe) for probe in probes.values()))
    return dict(zip(probes, results, strict=True))


def _probes(resources: Resources, expected_services: Sequence[str]) -> dict[str, Probe]:
    probes: dict[str, Probe] = {
        "postgres": lambda: _postgres(resources),
        "redis": lambda: _redis(resources),
        "nats": lambda: _nats(resources),
    }
    channels = resources.clients.channels if resources.clients else {}
    for name in expected_services:
        probes[name] = _grpc_probe(name, channels.get(name))
    return probes


async def _run(probe: Probe) -> dict[str, Any]:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            await probe()
    except TimeoutError:
        return {"status": "failing", "reason": f"no answer within {PROBE_TIMEOUT_SECONDS:g} s"}
    except Exception as exc:
        return {"status": "failing", "reason": _reason(exc)}
    return {"status": "ok"}


def _reason(exc: Exception) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc) or type(exc).__name__


async def _postgres(resources: Resources) -> None:
    if resources.postgres is None:
        raise ProbeFailed("not configured (ORCH_DATABASE_URL)")
    async with resources.postgres.acquire() as connection:
        await connection.fetchval("SELECT 1")


async def _redis(resources: Resources) -> None:
    if resources.redis is None:
        raise ProbeFailed("not configured (ORCH_REDIS_URL)")
    await resources.redis.ping()


async def _nats(resources: Resources) -> None:
    if resources.nats is None:
        raise ProbeFailed("not configured (ORCH_NATS_URL)")
    if not resources.nats.is_connected:
        raise ProbeFailed("not connected")
    await resources.nats.jetstream().account_info()


def _grpc_probe(name: str, channel: grpc.aio.Channel | None) -> Probe:
    async def probe() -> None:
        if channel is None:
            raise ProbeFailed(f"no channel to the {name} service")
        stub = health_pb2_grpc.HealthStub(channel)
        # "" is the server as a whole; servers report NOT_SERVING on it while draining.
        request = health_pb2.HealthCheckRequest(service="")
        reply = await stub.Check(request, timeout=PROBE_TIMEOUT_SECONDS)
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            raise ProbeFailed(status)

    return probe
