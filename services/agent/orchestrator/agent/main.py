"""The agent service process: `python -m orchestrator.agent.main`."""

from __future__ import annotations

from collections.abc import Awaitable

import asyncpg

from orchestrator.agent.directory import AgentDirectory
from orchestrator.agent.domain import AgentStatus
from orchestrator.agent.follower import DirectoryFollower
from orchestrator.agent.presence import RedisPresence
from orchestrator.agent.router import Router
from orchestrator.agent.service import AgentService
from orchestrator.agent.servicer import AgentServicer
from orchestrator.agent.sweeper import OfflineSweeper
from orchestrator.agent.task_releases import TaskReleases
from orchestrator.api.agent.v1 import agent_pb2, agent_pb2_grpc
from orchestrator.common.grpc_server import GrpcServer
from orchestrator.common.logs import configure_logging
from orchestrator.common.metrics import (
    AGENT_SLOTS_TOTAL,
    AGENT_SLOTS_USED,
    AGENTS,
    Poller,
    metrics_served,
)
from orchestrator.common.runtime import HARD_STOP_SLACK_SECONDS, Runtime, wait_for_shutdown_signal
from orchestrator.common.settings import Settings, load_settings
from orchestrator.common.telemetry import configure_tracing, shutdown_tracing

SERVICE_NAME = agent_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name


async def serve(settings: Settings, until: Awaitable[object]) -> None:
    """Runs the service until `until` completes, then drains and closes everything."""
    heartbeat_ttl_seconds = settings.agent_heartbeat_ttl_seconds
    offline_sweep_seconds = settings.agent_sweep_interval_seconds
    runtime = await Runtime.open(
        settings, schema="agent", migrations="orchestrator.agent.migrations"
    )
    presence = RedisPresence(runtime.redis)
    directory = AgentDirectory(prefetch=settings.agent_prefetch)
    service = AgentService(
        runtime.pool, presence, directory, heartbeat_ttl_seconds=heartbeat_ttl_seconds
    )
    follower = DirectoryFollower(runtime.pool, presence, directory, runtime.nc)
    releases = TaskReleases(runtime.pool, runtime.js, settings.stream_name, service)
    sweeper = OfflineSweeper(service, presence, offline_sweep_seconds)
    server = GrpcServer(settings.agent_addr, settings)
    server.add(
        agent_pb2_grpc.add_AgentServiceServicer_to_server,
        AgentServicer(service, Router(runtime.pool, presence, directory, service), runtime.nc),
        SERVICE_NAME,
    )
    try:
        await follower.start()
        await releases.start()
        await server.start()
        sweeper.start()
        agents = Poller("agents", lambda: count_agents(runtime.pool, directory))
        async with metrics_served(settings, agents):
            await until
    finally:
        await server.stop(settings.shutdown_grace_seconds)
        await sweeper.stop()
        await releases.stop()
        await follower.stop()
        await runtime.close()


async def count_agents(pool: asyncpg.Pool, directory: AgentDirectory) -> None:
    """`orch_agents` by status; the slots of the agents taking work, and those in use."""
    rows = await pool.fetch("SELECT status, count(*) FROM agent.agents GROUP BY status")
    counts = {status: count for status, count in rows}
    for status in AgentStatus:
        AGENTS.labels(status.value).set(counts.get(status.value, 0))
    used, total = directory.slots()
    AGENT_SLOTS_USED.set(used)
    AGENT_SLOTS_TOTAL.set(total)


def main() -> None:
    settings = load_settings()
    configure_logging("agent", settings.log_level, settings.log_json)
    configure_tracing("agent", settings.otel_exporter, settings.otel_exporter_endpoint)
    import uvloop

    # Past the grace period and some slack, a stuck shutdown (servers gone) ends by force.
    hard_stop = settings.shutdown_grace_seconds + HARD_STOP_SLACK_SECONDS
    try:
        uvloop.run(serve(settings, wait_for_shutdown_signal(hard_stop)))
    finally:
        shutdown_tracing()  # the spans still buffered go out


if __name__ == "__main__":
    main()
