"""The task service process: `python -m orchestrator.task.main`."""

from __future__ import annotations

from collections.abc import Awaitable

import asyncpg

from orchestrator.api.task.v1 import task_pb2, task_pb2_grpc
from orchestrator.common.channels import open_channel
from orchestrator.common.consumer import Consumer
from orchestrator.common.grpc_server import GrpcServer
from orchestrator.common.logs import configure_logging
from orchestrator.common.metrics import TASKS, Poller, metrics_served
from orchestrator.common.periodic import Periodic
from orchestrator.common.runtime import HARD_STOP_SLACK_SECONDS, Runtime, wait_for_shutdown_signal
from orchestrator.common.settings import Settings, load_settings
from orchestrator.common.telemetry import configure_tracing, shutdown_tracing
from orchestrator.task.choreography.agents import DURABLE as AGENTS_DURABLE
from orchestrator.task.choreography.agents import FILTER as AGENTS_FILTER
from orchestrator.task.choreography.agents import AgentEventHandler
from orchestrator.task.choreography.scheduler import Scheduler
from orchestrator.task.choreography.sessions import DURABLE, FILTER, SessionEventHandler
from orchestrator.task.domain import TaskStatus
from orchestrator.task.reaper import REAP_GRACE_SECONDS, Sight
from orchestrator.task.routing import AgentServiceRanker
from orchestrator.task.service import TaskService
from orchestrator.task.servicer import TaskServicer

SERVICE_NAME = task_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name


async def serve(settings: Settings, until: Awaitable[object]) -> None:
    """Runs the service until `until` completes, then drains and closes everything."""
    runtime = await Runtime.open(settings, schema="task", migrations="orchestrator.task.migrations")
    # The channel connects lazily: the agent service may start after this one.
    agents = open_channel(settings.agent_addr, settings)
    service = TaskService(runtime.pool, AgentServiceRanker(agents, settings.agent_addr))
    server = GrpcServer(settings.task_addr, settings)
    server.add(
        task_pb2_grpc.add_TaskServiceServicer_to_server,
        TaskServicer(service, runtime.nc),
        SERVICE_NAME,
    )
    # The sweep interval of the session service's timeout sweeper paces this one too.
    # Safe on every replica: each expired lease is re-read under its session's advisory lock and
    # requeued only if it is still the expired one.
    # After a spell in which no lease could be renewed (the database or this process down, or
    # this process just started), workers get time to renew before anything is requeued: their
    # reports and renewals retry at most 8 s apart.
    sight = Sight(
        blind_after=max(1.0, 3 * settings.sweep_interval_seconds),
        grace=min(settings.worker_lease_seconds, REAP_GRACE_SECONDS),
    )
    reaper = Periodic(
        "task-lease-reaper",
        lambda: service.reap_expired_leases(may_reap=sight.looked),
        settings.sweep_interval_seconds,
        done="requeued %d tasks whose lease ran out",
    )
    scheduler = Scheduler(runtime.connection, service, max_running=settings.max_running_tasks)
    service.on_committed(scheduler.on_settled)
    sessions = Consumer(
        runtime.pool,
        runtime.js,
        schema="task",
        stream=settings.stream_name,
        durable=DURABLE,
        filter_subject=FILTER,
        handler=SessionEventHandler(service, scheduler.wake),
    )
    agents_gone = Consumer(
        runtime.pool,
        runtime.js,
        schema="task",
        stream=settings.stream_name,
        durable=AGENTS_DURABLE,
        filter_subject=AGENTS_FILTER,
        handler=AgentEventHandler(service, scheduler.wake),
    )
    try:
        await server.start()
        reaper.start()
        scheduler.start()
        await sessions.start()
        await agents_gone.start()
        async with metrics_served(settings, Poller("tasks", lambda: count_tasks(runtime.pool))):
            await until
    finally:
        await server.stop(settings.shutdown_grace_seconds)
        await agents_gone.stop()
        await sessions.stop()
        await scheduler.stop()
        await reaper.stop()
        await agents.close()
        await runtime.close()


async def count_tasks(pool: asyncpg.Pool) -> None:
    """`orch_tasks` by status, every status present (0 when none has it)."""
    rows = await pool.fetch("SELECT status, count(*) FROM task.tasks GROUP BY status")
    counts = {status: count for status, count in rows}
    for status in TaskStatus:
        TASKS.labels(status.value).set(counts.get(status.value, 0))


def main() -> None:
    settings = load_settings()
    configure_logging("task", settings.log_level, settings.log_json)
    configure_tracing("task", settings.otel_exporter, settings.otel_exporter_endpoint)
    import uvloop

    # Past the grace period and some slack, a stuck shutdown (servers gone) ends by force.
    hard_stop = settings.shutdown_grace_seconds + HARD_STOP_SLACK_SECONDS
    try:
        uvloop.run(serve(settings, wait_for_shutdown_signal(hard_stop)))
    finally:
        shutdown_tracing()  # the spans still buffered go out


if __name__ == "__main__":
    main()
