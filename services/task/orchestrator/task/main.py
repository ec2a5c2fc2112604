"""The task service process: `python -m orchestrator.task.main`."""

from __future__ import annotations

from collections.abc import Awaitable

import grpc

from orchestrator.api.task.v1 import task_pb2, task_pb2_grpc
from orchestrator.common.grpc_server import GrpcServer
from orchestrator.common.logs import configure_logging
from orchestrator.common.runtime import Runtime, wait_for_shutdown_signal
from orchestrator.common.settings import Settings, load_settings
from orchestrator.common.telemetry import configure_tracing
from orchestrator.task.reaper import LeaseReaper
from orchestrator.task.routing import AgentServiceRouter
from orchestrator.task.service import TaskService
from orchestrator.task.servicer import TaskServicer

SERVICE_NAME = task_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name


async def serve(settings: Settings, until: Awaitable[object]) -> None:
    """Runs the service until `until` completes, then drains and closes everything."""
    runtime = await Runtime.open(settings, schema="task", migrations="orchestrator.task.migrations")
    # The channel connects lazily: the agent service may start after this one.
    agents = grpc.aio.insecure_channel(settings.agent_addr)
    service = TaskService(runtime.pool, AgentServiceRouter(agents, settings.agent_addr))
    server = GrpcServer(settings.task_addr)
    server.add(
        task_pb2_grpc.add_TaskServiceServicer_to_server,
        TaskServicer(service, runtime.nc),
        SERVICE_NAME,
    )
    # The sweep interval of the session service's timeout sweeper paces this one too.
    reaper = LeaseReaper(service, settings.sweep_interval_seconds)
    try:
        await server.start()
        reaper.start()
        await until
    finally:
        await server.stop(settings.shutdown_grace_seconds)
        await reaper.stop()
        await agents.close()
        await runtime.close()


def main() -> None:
    settings = load_settings()
    configure_logging("task", settings.log_level, settings.log_json)
    configure_tracing("task", settings.otel_exporter)
    import uvloop

    uvloop.run(serve(settings, wait_for_shutdown_signal()))


if __name__ == "__main__":
    main()
