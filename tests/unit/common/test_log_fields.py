"""JSON log lines carry the trace, span, session and task ids of what is being handled."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from orchestrator.common.logs import JsonFormatter, log_ids
from orchestrator.common.telemetry import (
    configure_tracing,
    continued,
    inject_trace_context,
    remember_session_trace,
    session_trace_context,
    shutdown_tracing,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
PARENT = {"traceparent": f"00-{TRACE}-{SPAN}-01"}


def line(message: str = "hello") -> dict[str, str]:
    record = logging.LogRecord("orchestrator.test", logging.INFO, __file__, 1, message, (), None)
    parsed: dict[str, str] = json.loads(JsonFormatter("task").format(record))
    return parsed


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    configure_tracing("tests", span_exporter=exporter)
    try:
        yield exporter
    finally:
        shutdown_tracing()


def test_a_line_outside_any_handling_has_no_ids() -> None:
    entry = line()
    for key in ("trace_id", "span_id", "session_id", "task_id"):
        assert key not in entry
    assert entry["msg"] == "hello"


def test_session_and_task_ids_hold_for_the_block_only() -> None:
    with log_ids("s-1", "t-1"):
        inside = line()
        with log_ids(task_id="t-2"):
            nested = line()
    assert (inside["session_id"], inside["task_id"]) == ("s-1", "t-1")
    assert (nested["session_id"], nested["task_id"]) == ("s-1", "t-2")
    assert "session_id" not in line()


def test_without_spans_the_incoming_trace_is_logged_and_handed_on() -> None:
    with continued(PARENT, "consumer event"):
        entry = line()
        handed_on = inject_trace_context()
    assert (entry["trace_id"], entry["span_id"]) == (TRACE, SPAN)
    assert handed_on == PARENT
    assert inject_trace_context() == {}
    assert "trace_id" not in line()


def test_with_spans_a_line_names_the_current_span(spans: InMemorySpanExporter) -> None:
    with continued(PARENT, "consumer event"):
        entry = line()
        handed_on = inject_trace_context()
    (span,) = spans.get_finished_spans()
    context = span.get_span_context()
    assert context is not None
    assert entry["trace_id"] == TRACE == format(context.trace_id, "032x")
    assert entry["span_id"] == format(context.span_id, "016x") != SPAN
    assert span.parent is not None and format(span.parent.span_id, "016x") == SPAN
    assert handed_on["traceparent"].split("-")[1:3] == [TRACE, entry["span_id"]]


def test_a_session_s_work_continues_its_remembered_trace() -> None:
    assert session_trace_context("s-9") == {}
    with continued(PARENT, "session.started"):
        remember_session_trace("s-9")
    # Later, in a loop that handles nothing (the scheduler), the session's trace goes on.
    assert session_trace_context("s-9") == PARENT
    assert session_trace_context("s-other") == {}
