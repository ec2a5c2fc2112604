"""RouteTask among a large fleet: what routing costs when every agent is a candidate somewhere.

The fleet is random but seeded: each agent holds 3 primary and 2 secondary capabilities of the
26, prefers 2 of 12 technologies, 1 or 2 session types and a complexity, and takes 1 to 4 tasks
at a time. A route asks for 1 or 2 capabilities (so it weighs about a fifth or a thirtieth of the
fleet), 2 technologies, a session type and a complexity, and wants the best 3. Routes do not
reserve, so the fleet stays the same for every call; a last run reserves a slot per call.

Heartbeats of the whole fleet run before each measured phase: with the default 10 s TTL,
agents would otherwise go OFFLINE during the run.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc

from orchestrator.api.agent.v1 import agent_pb2 as pb
from orchestrator.api.agent.v1 import agent_pb2_grpc
from orchestrator.api.common.v1 import taxonomy_pb2 as tx
from orchestrator.api.session.v1 import session_pb2
from orchestrator.bench.load import LoadResult, closed_loop

SEED = 20_240_601
REGISTER_IN_FLIGHT = 64
ROUTE_IN_FLIGHT = (1, 16)
BEST = 3
TARGET_P99_MS = 20.0

_CAPABILITIES = [v for v in tx.Capability.values() if v]
_SESSION_TYPES = [v for v in session_pb2.SessionType.values() if v]
_COMPLEXITIES = [v for v in tx.TaskComplexity.values() if v]
_AGENT_TYPES = [v for v in pb.AgentType.values() if v]
_TECHNOLOGIES = [
    "python",
    "go",
    "rust",
    "typescript",
    "java",
    "postgres",
    "redis",
    "kafka",
    "react",
    "terraform",
    "docker",
    "kubernetes",
]


def fleet(size: int, rng: random.Random) -> list[pb.RegisterAgentRequest]:
    run = uuid.uuid4().hex[:6].upper()
    agents = []
    for n in range(size):
        held = rng.sample(_CAPABILITIES, 5)
        agents.append(
            pb.RegisterAgentRequest(
                name=f"AGENT-BENCH-{run}-{n:06d}",
                agent_type=rng.choice(_AGENT_TYPES),
                primary_capabilities=held[:3],
                secondary_capabilities=held[3:],
                preferred_technologies=rng.sample(_TECHNOLOGIES, 2),
                preferred_session_types=rng.sample(_SESSION_TYPES, rng.randint(1, 2)),
                complexity_preference=rng.choice(_COMPLEXITIES),
                max_concurrent_tasks=rng.randint(1, 4),
                actor="bench",
            )
        )
    return agents


def routes(count: int, rng: random.Random, *, reserve: bool = False) -> list[pb.RouteTaskRequest]:
    return [
        pb.RouteTaskRequest(
            required_capabilities=rng.sample(_CAPABILITIES, rng.randint(1, 2)),
            technologies=rng.sample(_TECHNOLOGIES, 2),
            session_type=rng.choice(_SESSION_TYPES),
            complexity=rng.choice(_COMPLEXITIES),
            task_id=f"bench-{uuid.uuid4()}",
            reserve=reserve,
            max_candidates=BEST,
        )
        for _ in range(count)
    ]


def _weighed(agents: list[pb.RegisterAgentRequest], requests: list[pb.RouteTaskRequest]) -> float:
    """How many agents hold every required capability, on average over `requests`."""
    held = [set(a.primary_capabilities) | set(a.secondary_capabilities) for a in agents]
    sample = requests[:200]
    return statistics.mean(
        sum(1 for h in held if h.issuperset(r.required_capabilities)) for r in sample
    )


async def _each(call: Any, requests: list[Any], in_flight: int) -> LoadResult:
    """Sends every request once, `in_flight` at a time."""
    pending: Iterator[Any] = iter(requests)
    return await closed_loop(lambda: call(next(pending)), len(requests), in_flight)


async def _register(
    stub: Any, agents: list[pb.RegisterAgentRequest]
) -> tuple[LoadResult, list[str]]:
    ids: list[str] = []

    async def register(request: pb.RegisterAgentRequest) -> None:
        ids.append((await stub.RegisterAgent(request)).agent.id)

    return await _each(register, agents, REGISTER_IN_FLIGHT), ids


async def _beat(stub: Any, ids: list[str]) -> LoadResult:
    beats = [pb.HeartbeatRequest(agent_id=i) for i in ids]
    return await _each(stub.Heartbeat, beats, REGISTER_IN_FLIGHT)


async def _route(stub: Any, requests: list[pb.RouteTaskRequest], in_flight: int) -> LoadResult:
    async def route(request: pb.RouteTaskRequest) -> None:
        try:
            await stub.RouteTask(request)
        except grpc.aio.AioRpcError as exc:
            # "No agent fits" is a valid answer (a pair nobody holds together); others are not.
            if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise

    return await _each(route, requests, in_flight)


def _verdict(result: LoadResult) -> str:
    p99 = result.percentile(99)
    return f"p99 {p99:.1f} ms (target < {TARGET_P99_MS:.0f} ms)"


async def bench_routing(address: str, agents: int = 10_000, calls: int = 2_000) -> list[str]:
    """Registers `agents` agents, then measures RouteTask; returns the lines to print."""
    rng = random.Random(SEED)
    wanted = fleet(agents, rng)
    lines = [f"agent service: RouteTask among {agents} agents, best {BEST} of each route"]
    async with grpc.aio.insecure_channel(address) as channel:
        stub: Any = agent_pb2_grpc.AgentServiceStub(channel)
        began = time.perf_counter()
        registered, ids = await _register(stub, wanted)
        lines.append("  " + registered.line(f"RegisterAgent ({REGISTER_IN_FLIGHT} in flight)"))
        sample = routes(calls, rng)
        lines.append(f"  a route weighs {_weighed(wanted, sample):.0f} agents on average")
        for in_flight in ROUTE_IN_FLIGHT:
            beat = await _beat(stub, ids)
            await _route(stub, routes(100, rng), in_flight)  # warm-up
            routed = await _route(stub, routes(calls, rng), in_flight)
            label = f"RouteTask ({in_flight} in flight)"
            lines.append("  " + beat.line(f"Heartbeat ({REGISTER_IN_FLIGHT} in flight)"))
            lines.append("  " + routed.line(label) + "  " + _verdict(routed))
        await _beat(stub, ids)
        reserved = await _route(stub, routes(calls, rng, reserve=True), ROUTE_IN_FLIGHT[-1])
        label = f"RouteTask reserve ({ROUTE_IN_FLIGHT[-1]} in flight)"
        lines.append("  " + reserved.line(label) + "  " + _verdict(reserved))
        lines.append(f"  whole run {time.perf_counter() - began:.1f} s")
    return lines
