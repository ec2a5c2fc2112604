"""The context service process: `python -m orchestrator.context.main`."""

from __future__ import annotations

from collections.abc import Awaitable

from orchestrator.api.context.v1 import context_pb2, context_pb2_grpc
from orchestrator.common.grpc_server import GrpcServer
from orchestrator.common.logs import configure_logging
from orchestrator.common.metrics import metrics_served
from orchestrator.common.periodic import Periodic
from orchestrator.common.runtime import HARD_STOP_SLACK_SECONDS, Runtime, wait_for_shutdown_signal
from orchestrator.common.settings import Settings, load_settings
from orchestrator.common.telemetry import configure_tracing, shutdown_tracing
from orchestrator.context.service import ContextService
from orchestrator.context.servicer import ContextServicer

SERVICE_NAME = context_pb2.DESCRIPTOR.services_by_name["ContextService"].full_name


async def serve(settings: Settings, until: Awaitable[object]) -> None:
    """Runs the service until `until` completes, then drains and closes everything."""
    runtime = await Runtime.open(
        settings, schema="context", migrations="orchestrator.context.migrations"
    )
    service = ContextService(runtime.pool)
    server = GrpcServer(settings.context_addr, settings)
    server.add(
        context_pb2_grpc.add_ContextServiceServicer_to_server,
        ContextServicer(service, runtime.nc),
        SERVICE_NAME,
    )
    # Safe on every replica: due rows are claimed with FOR UPDATE SKIP LOCKED, written with a
    # version check; reads treat an expired context as gone before the sweep reaches it.
    sweeper = Periodic(
        "context-expiry-sweeper",
        service.expire_due,
        settings.sweep_interval_seconds,
        done="expired %d temporary contexts",
    )
    try:
        await server.start()
        sweeper.start()
        async with metrics_served(settings):
            await until
    finally:
        await server.stop(settings.shutdown_grace_seconds)
        await sweeper.stop()
        await runtime.close()


def main() -> None:
    settings = load_settings()
    configure_logging("context", settings.log_level, settings.log_json)
    configure_tracing("context", settings.otel_exporter, settings.otel_exporter_endpoint)
    import uvloop

    # Past the grace period and some slack, a stuck shutdown (servers gone) ends by force.
    hard_stop = settings.shutdown_grace_seconds + HARD_STOP_SLACK_SECONDS
    try:
        uvloop.run(serve(settings, wait_for_shutdown_signal(hard_stop)))
    finally:
        shutdown_tracing()  # the spans still buffered go out


if __name__ == "__main__":
    main()
