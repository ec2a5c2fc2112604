"""OpenTelemetry: the tracer, W3C trace context carried in events, and what logs learn of it.

The exporter defaults to none, and then no span is made at all (no SDK work on the hot path);
an incoming trace context (an event's, a gRPC call's `traceparent`) is still handed on as it
came, to the events written while handling it and to the log lines. With an exporter
(`console`, `otlp`), spans are made: the gateway's HTTP requests and gRPC client calls and Redis
commands (OpenTelemetry's instrumentations), gRPC calls served (orchestrator.common.grpc_server),
PostgreSQL queries (asyncpg's query loggers), consumers' handling of each event and the
worker's run of each task, all linked through the trace context the events carry.

A session's work is one trace: consumers remember the trace of each session's latest session
event (`remember_session_trace`), and the events of that session's tasks continue it
(`session_trace_context`), whichever loop writes them.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import SpanKind, Status, StatusCode

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
# Sessions whose trace a process remembers; the oldest are forgotten first.
MAX_SESSION_TRACES = 10_000

# The trace context being handled when no span is made (exporter none): passed on unchanged.
_carried: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "carried_trace_context", default=None
)
_session_traces: dict[str, Mapping[str, str]] = {}


@dataclass
class _Tracing:
    provider: TracerProvider | None = None
    tracer: trace.Tracer | None = None
    undo: list[Any] = field(default_factory=list)


_state = _Tracing()


def configure_tracing(
    service: str,
    exporter: str = "none",
    endpoint: str | None = None,
    *,
    span_exporter: SpanExporter | None = None,
) -> TracerProvider | None:
    """Makes spans from now on, exported as `exporter` says (`console`; `otlp` over HTTP to
    `endpoint`, a base URL, else OTEL_EXPORTER_OTLP_ENDPOINT, else localhost:4318), or to
    `span_exporter` as they end (tests). `none` (and no `span_exporter`): no spans; returns None."""
    if exporter == "none" and span_exporter is None:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if span_exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    else:
        provider.add_span_processor(BatchSpanProcessor(_exporter(exporter, endpoint)))
    shutdown_tracing()
    _state.provider = provider
    _state.tracer = provider.get_tracer("orchestrator")
    _state.undo = _instrument_libraries(provider)
    # Global for any other library that asks (once per process, so not for a test's exporter).
    if span_exporter is None and not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(provider)
    return provider


def _exporter(kind: str, endpoint: str | None) -> SpanExporter:
    if kind == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if endpoint:
        return OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    return OTLPSpanExporter()  # reads the standard OTEL_EXPORTER_OTLP_* variables


def _instrument_libraries(provider: TracerProvider) -> list[Any]:
    """gRPC client channels made from now on, and Redis commands."""
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    done: list[Any] = []
    grpc_client = GrpcAioInstrumentorClient()  # type: ignore[no-untyped-call]
    for instrumentor in (grpc_client, RedisInstrumentor()):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)
            done.append(instrumentor)
    return done


def shutdown_tracing() -> None:
    """Flushes and stops making spans (the process's end, or a test's)."""
    for instrumentor in _state.undo:
        instrumentor.uninstrument()
    if _state.provider is not None:
        _state.provider.shutdown()
    _state.provider = None
    _state.tracer = None
    _state.undo = []
    _session_traces.clear()


def tracer() -> trace.Tracer | None:
    """The tracer while spans are made, else None."""
    return _state.tracer


def tracer_provider() -> TracerProvider | None:
    return _state.provider


def inject_trace_context() -> dict[str, str]:
    """The current trace context as W3C headers (`traceparent`, `tracestate`): the current
    span's, or without spans the context being handled; {} when there is none."""
    if _state.tracer is None:
        carried = _carried.get()
        return dict(carried) if carried else {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextlib.contextmanager
def continued(
    carrier: Mapping[str, str],
    name: str,
    *,
    kind: SpanKind = SpanKind.CONSUMER,
    attributes: Mapping[str, str | int] | None = None,
) -> Iterator[None]:
    """Runs the block as the continuation of `carrier`'s trace (a new one when it is empty):
    in a span of its own when spans are made, else with the carrier handed on as it is."""
    tracer = _state.tracer
    if tracer is None:
        if not carrier:
            yield
            return
        token = _carried.set(carrier)
        try:
            yield
        finally:
            _carried.reset(token)
        return
    parent = propagate.extract(carrier, context=Context()) if carrier else Context()
    with tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attributes):
        yield


def carry(carrier: Mapping[str, str]) -> None:
    """Without spans: the rest of this task hands `carrier` on (a gRPC call's trace context)."""
    if carrier:
        _carried.set(carrier)


def remember_session_trace(session_id: str) -> None:
    """The current trace context becomes the one this process continues for `session_id`."""
    carrier = inject_trace_context()
    if not carrier:
        return
    _session_traces.pop(session_id, None)
    _session_traces[session_id] = carrier
    if len(_session_traces) > MAX_SESSION_TRACES:
        del _session_traces[next(iter(_session_traces))]


def session_trace_context(session_id: str) -> Mapping[str, str]:
    """The trace context for an event of `session_id`'s work: the session's remembered one,
    else the current one. Read-only."""
    known = _session_traces.get(session_id)
    return known if known is not None else inject_trace_context()


def current_ids() -> tuple[str, str]:
    """(trace id, span id) in hex of what is being handled; empty strings when nothing is."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        return format(context.trace_id, "032x"), format(context.span_id, "016x")
    carried = _carried.get()
    parent = carried.get(TRACEPARENT, "") if carried else ""
    # version-traceid-spanid-flags: 00-<32 hex>-<16 hex>-01
    if len(parent) >= 55:
        return parent[3:35], parent[36:52]
    return "", ""


def watch_queries(conn: Any) -> None:
    """A span for each query `conn` (an asyncpg connection) runs from now on, while spans are
    made. asyncpg calls the logger after the query, in the caller's context."""
    if _state.tracer is not None:
        conn.add_query_logger(_query_span)


def _query_span(record: Any) -> None:
    tracer = _state.tracer
    if tracer is None:
        return
    end = time.time_ns()
    query = str(record.query)
    span = tracer.start_span(
        query.split(None, 1)[0].upper() if query.strip() else "SQL",
        kind=SpanKind.CLIENT,
        start_time=end - int(record.elapsed * 1e9),
        attributes={"db.system.name": "postgresql", "db.query.text": query[:2000]},
    )
    if record.exception is not None:
        span.set_status(Status(StatusCode.ERROR, type(record.exception).__name__))
    span.end(end_time=end)
