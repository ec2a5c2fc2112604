"""One trace from an HTTP StartSession to the task service's consumer and the worker's run.

The gateway, the four services and a real shell worker run in this process against the real
servers; spans go to an in-memory exporter. The session's root task runs alone (max depth 0)
on a capability no other test's agent holds.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind

from orchestrator.api.common.v1 import taxonomy_pb2
from orchestrator.common.ids import root_task_id
from orchestrator.common.settings import Settings
from orchestrator.common.stack import pick_free_port
from orchestrator.common.telemetry import configure_tracing, shutdown_tracing
from orchestrator.worker import Worker, WorkerConfig
from orchestrator.worker.executors import ShellExecutor
from tests.support.mesh import running_gateway, wait_until, worker_running

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    configure_tracing("tests", span_exporter=exporter)
    try:
        yield exporter
    finally:
        shutdown_tracing()


@contextlib.asynccontextmanager
async def optimizing_worker(settings: Settings, workspace: Path) -> AsyncIterator[Worker]:
    name = f"AGENT-TRACE-{uuid.uuid4().hex[:10].upper()}"
    config = WorkerConfig(
        name=name, workspace=workspace, capabilities=(taxonomy_pb2.CAPABILITY_OPTIMIZATION,)
    )
    async with worker_running(Worker(settings, config, ShellExecutor())) as worker:
        yield worker


async def test_one_trace_links_start_session_to_the_consumer_and_the_worker_run(
    settings: Settings,
    session_service: str,
    agent_service: str,
    task_service: str,
    context_service: str,
    spans: InMemorySpanExporter,
    tmp_path: Path,
) -> None:
    private = settings.model_copy(update={"gateway_auth": "off", "gateway_port": pick_free_port()})
    body = {
        "title": "IND-1 traced",
        "initial_prompt": "trace the whole path",
        "agent_config": {"max_depth": "0", "capabilities": "optimization", "command": "true"},
    }
    async with (
        running_gateway(private) as base,
        optimizing_worker(settings, tmp_path),
        httpx.AsyncClient(base_url=base) as http,
    ):
        created = await http.post("/api/v1/sessions", json=body)
        assert created.status_code == 201, created.text
        session_id = created.json()["id"]
        started = await http.post(f"/api/v1/sessions/{session_id}/start")
        assert started.status_code == 200, started.text

        async def completed() -> bool:
            reply = await http.get(f"/api/v1/sessions/{session_id}")
            return bool(reply.json()["status"] == "completed")

        await wait_until(completed, within=30, what="the session to complete")

    finished = spans.get_finished_spans()
    start = _one(
        finished,
        lambda s: (
            s.kind is SpanKind.SERVER and s.name == "POST /api/v1/sessions/{session_id}/start"
        ),
    )
    trace_id = _context(start).trace_id
    in_trace = [s for s in finished if _context(s).trace_id == trace_id]
    names = {s.name for s in in_trace}
    # The gateway's gRPC call, served by the session service, its event consumed by the task
    # service, the root task run by the worker: one trace.
    assert "/orchestrator.session.v1.SessionService/StartSession" in names  # the client's span
    served = _one(in_trace, lambda s: s.name.endswith("SessionService/StartSession") and
                  s.kind is SpanKind.SERVER)  # fmt: skip
    consumed = _one(in_trace, lambda s: s.name == "task-on-session-events session.started")
    run = _one(in_trace, lambda s: s.name == "task run")
    assert run.attributes is not None
    assert run.attributes["orch.task_id"] == root_task_id(session_id)
    # Each hop is a child of the one before it.
    by_id = {_context(s).span_id: s for s in in_trace}
    assert _ancestors(consumed, by_id) >= {served.name, start.name}
    assert consumed.name in _ancestors(run, by_id)


def _context(span: ReadableSpan) -> SpanContext:
    context = span.get_span_context()
    assert context is not None
    return context


def _one(spans: Iterable[ReadableSpan], wanted: Callable[[ReadableSpan], bool]) -> ReadableSpan:
    found = [s for s in spans if wanted(s)]
    assert found, "no such span"
    return found[0]


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> set[str]:
    names = set()
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        span = by_id[parent.span_id]
        names.add(span.name)
        parent = span.parent
    return names
