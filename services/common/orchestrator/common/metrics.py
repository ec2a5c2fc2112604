"""Prometheus metrics of the mesh, and the `/metrics` endpoint each process serves.

Hot paths only bump counters and histograms (a cached child, one observe); gauges that need a
query (backlogs, lags, counts by state) are polled every few seconds by `Poller`s, which do
nothing while no endpoint of this process is up. Names and labels are fixed: the Grafana
dashboard in `deploy/` reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import Counter, Gauge, Histogram

from orchestrator.common.settings import Settings

log = logging.getLogger(__name__)

# Seconds: a commit-bound RPC takes milliseconds, a decomposition or a graph seconds.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

RPC_DURATION = Histogram(
    "orch_rpc_duration_seconds",
    "gRPC calls served, by service, method and status code (a stream: its whole life).",
    ("service", "method", "code"),
    buckets=_LATENCY_BUCKETS,
)
HTTP_DURATION = Histogram(
    "orch_http_request_duration_seconds",
    "HTTP requests served by the gateway, by route template, method and status.",
    ("route", "method", "status"),
    buckets=_LATENCY_BUCKETS,
)
OUTBOX_BACKLOG = Gauge(
    "orch_outbox_backlog", "Events written to the outbox and not yet published.", ("schema",)
)
OUTBOX_OLDEST_AGE = Gauge(
    "orch_outbox_oldest_age_seconds",
    "Age of the oldest event waiting in the outbox (0 when it is empty).",
    ("schema",),
)
EVENTS_PUBLISHED = Counter(
    "orch_events_published_total", "Events the outbox relay published.", ("schema",)
)
CONSUMER_PENDING = Gauge(
    "orch_consumer_pending",
    "Messages of the stream a durable consumer has not been handed yet.",
    ("consumer", "stream"),
)
TASKS = Gauge("orch_tasks", "Tasks by status (all sessions).", ("status",))
AGENTS = Gauge("orch_agents", "Registered agents by status.", ("status",))
AGENT_SLOTS_USED = Gauge("orch_agent_slots_used", "Tasks the live agents hold.")
AGENT_SLOTS_TOTAL = Gauge("orch_agent_slots_total", "Task slots of the live agents.")
SESSION_BUDGET_USED = Histogram(
    "orch_session_budget_used_ratio",
    "Share of its budget (tokens or cost, whichever is higher) a budgeted session has used, "
    "observed whenever usage is recorded.",
    buckets=(0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.25, 1.5, 2.0),
)

# Endpoints up in this process: pollers work only while someone can read what they find.
_serving = 0
_poll_seconds = 5.0


def serving() -> bool:
    return _serving > 0


def poll_seconds() -> float:
    """How often gauges that need a query are refreshed (ORCH_METRICS_POLL_SECONDS)."""
    return _poll_seconds


class MetricsServer:
    """`/metrics` (the process's default registry) on its own port, served by a thread."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.port: int = server.server_port

    def stop(self) -> None:
        global _serving
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        _serving -= 1


def serve_metrics(
    port: int, host: str = "127.0.0.1", poll_every: float = 5.0
) -> MetricsServer | None:
    """Starts the endpoint; None when `port` is 0 (metrics off for this process)."""
    global _serving, _poll_seconds
    if not port:
        return None
    server, thread = prometheus_client.start_http_server(port, addr=host)
    _serving += 1
    _poll_seconds = poll_every
    log.info("metrics on http://%s:%d/metrics", host, port)
    return MetricsServer(server, thread)


def observe_budget_use(tokens: int, token_budget: int, cost: float, cost_budget: float) -> None:
    """One observation of a session's budget use; nothing for a session without a budget."""
    shares = []
    if token_budget > 0:
        shares.append(tokens / token_budget)
    if cost_budget > 0:
        shares.append(cost / cost_budget)
    if shares:
        SESSION_BUDGET_USED.observe(max(shares))


class Poller:
    """Runs `poll` every `interval_seconds` (default: `poll_seconds()`) while an endpoint is
    up; a failing poll is logged at debug level and tried again (a gauge is stale for a while,
    nothing more)."""

    def __init__(
        self, name: str, poll: Callable[[], Awaitable[None]], interval_seconds: float | None = None
    ) -> None:
        self.name = name
        self._poll = poll
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"metrics-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            if serving():
                try:
                    await self._poll()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.debug("metrics poll %s failed: %s", self.name, exc)
            await asyncio.sleep(self._interval or _poll_seconds)


@contextlib.asynccontextmanager
async def metrics_served(settings: Settings, *pollers: Poller) -> AsyncIterator[None]:
    """The process's `/metrics` (when ORCH_METRICS_PORT is set) and its pollers, for the
    block's duration."""
    server = serve_metrics(
        settings.metrics_port, settings.metrics_host, settings.metrics_poll_seconds
    )
    for poller in pollers:
        poller.start()
    try:
        yield
    finally:
        for poller in pollers:
            await poller.stop()
        if server is not None:
            await asyncio.to_thread(server.stop)
