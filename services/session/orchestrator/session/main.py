"""The session service process: `python -m orchestrator.session.main`."""

from __future__ import annotations

from collections.abc import Awaitable

from orchestrator.api.session.v1 import session_pb2, session_pb2_grpc
from orchestrator.common.consumer import Consumer
from orchestrator.common.grpc_server import GrpcServer
from orchestrator.common.logs import configure_logging
from orchestrator.common.metrics import metrics_served
from orchestrator.common.periodic import Periodic
from orchestrator.common.runtime import HARD_STOP_SLACK_SECONDS, Runtime, wait_for_shutdown_signal
from orchestrator.common.settings import Settings, load_settings
from orchestrator.common.telemetry import configure_tracing, shutdown_tracing
from orchestrator.session.progress import BATCH, DURABLE, FILTER, LINGER_SECONDS, TaskEventHandler
from orchestrator.session.service import SessionService
from orchestrator.session.servicer import SessionServicer

SERVICE_NAME = session_pb2.DESCRIPTOR.services_by_name["SessionService"].full_name


async def serve(settings: Settings, until: Awaitable[object]) -> None:
    """Runs the service until `until` completes, then drains and closes everything."""
    runtime = await Runtime.open(
        settings, schema="session", migrations="orchestrator.session.migrations"
    )
    service = SessionService(runtime.pool)
    server = GrpcServer(settings.session_addr, settings)
    server.add(
        session_pb2_grpc.add_SessionServiceServicer_to_server,
        SessionServicer(service, runtime.nc),
        SERVICE_NAME,
    )
    # Safe on every replica: overdue rows are claimed with FOR UPDATE SKIP LOCKED.
    sweeper = Periodic(
        "session-timeout-sweeper",
        service.expire_overdue,
        settings.sweep_interval_seconds,
        done="ended %d overdue sessions",
    )
    progress = TaskEventHandler(service)
    tasks = Consumer(
        runtime.pool,
        runtime.js,
        schema="session",
        stream=settings.stream_name,
        durable=DURABLE,
        filter_subject=FILTER,
        handler=progress,
        batch_handler=progress.handle_batch,
        batch=BATCH,
        linger_seconds=LINGER_SECONDS,
    )
    try:
        await server.start()
        sweeper.start()
        await tasks.start()
        async with metrics_served(settings):
            await until
    finally:
        await server.stop(settings.shutdown_grace_seconds)
        await tasks.stop()
        await sweeper.stop()
        await runtime.close()


def main() -> None:
    settings = load_settings()
    configure_logging("session", settings.log_level, settings.log_json)
    configure_tracing("session", settings.otel_exporter, settings.otel_exporter_endpoint)
    import uvloop

    # Past the grace period and some slack, a stuck shutdown (servers gone) ends by force.
    hard_stop = settings.shutdown_grace_seconds + HARD_STOP_SLACK_SECONDS
    try:
        uvloop.run(serve(settings, wait_for_shutdown_signal(hard_stop)))
    finally:
        shutdown_tracing()  # the spans still buffered go out


if __name__ == "__main__":
    main()
