"""The Prometheus metrics of an in-process mesh after a small budgeted session ran on a worker.

The services here share this process's registry, so the gateway's /metrics and a process
endpoint (as ORCH_METRICS_PORT starts one) both show every service's series.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.api.common.v1 import taxonomy_pb2
from orchestrator.common.metrics import serve_metrics
from orchestrator.common.settings import Settings
from orchestrator.common.stack import pick_free_port
from orchestrator.worker import Worker, WorkerConfig
from orchestrator.worker.executors import ShellExecutor
from tests.support.mesh import wait_until, worker_running

pytestmark = pytest.mark.timeout(60)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
# The run reports usage: 300 of the session's 1,000 tokens.
USAGE = """echo '{"usage": {"input_tokens": 200, "output_tokens": 100}}' > "$ORCH_RESULT_FILE\""""


@contextlib.asynccontextmanager
async def tuning_worker(settings: Settings, workspace: Path) -> AsyncIterator[Worker]:
    name = f"AGENT-METRICS-{uuid.uuid4().hex[:10].upper()}"
    config = WorkerConfig(
        name=name,
        workspace=workspace,
        capabilities=(taxonomy_pb2.CAPABILITY_PERFORMANCE_ANALYSIS,),
        max_tasks=2,
    )
    async with worker_running(Worker(settings, config, ShellExecutor())) as worker:
        yield worker


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient() as http:
        reply = await http.get(url)
    assert reply.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def test_every_metric_shows_up_with_sane_values(
    settings: Settings, gateway: str, tmp_path: Path
) -> None:
    endpoint = serve_metrics(pick_free_port(), poll_every=0.2)
    assert endpoint is not None
    process = f"http://127.0.0.1:{endpoint.port}/metrics"
    body = {
        "title": "IND-2 measured",
        "initial_prompt": "measure it",
        "agent_config": {
            "max_depth": "0",
            "capabilities": "performance_analysis",
            "command": USAGE,
        },
        "limits": {"token_budget": 1000},
    }
    try:
        async with tuning_worker(settings, tmp_path), httpx.AsyncClient(base_url=gateway) as http:
            created = await http.post("/api/v1/sessions", json=body)
            assert created.status_code == 201, created.text
            session_id = created.json()["id"]
            assert (await http.post(f"/api/v1/sessions/{session_id}/start")).status_code == 200

            async def completed() -> bool:
                reply = await http.get(f"/api/v1/sessions/{session_id}")
                return bool(reply.json()["status"] == "completed")

            await wait_until(completed, within=30, what="the session to complete")

            async def polled() -> bool:
                samples = await scrape(process)
                return bool(
                    (value(samples, "orch_tasks", status="completed") or 0) >= 1
                    and (value(samples, "orch_agent_slots_total") or 0) >= 2
                    and value(samples, "orch_outbox_backlog", schema="task") is not None
                )

            await wait_until(polled, within=20, what="the polled gauges")
            samples = await scrape(process)
        via_gateway = await scrape(f"{gateway}/metrics")
    finally:
        await asyncio.to_thread(endpoint.stop)

    start = value(
        samples,
        "orch_rpc_duration_seconds_count",
        service="orchestrator.session.v1.SessionService",
        method="StartSession",
        code="OK",
    )
    assert start is not None and start >= 1
    route = "/api/v1/sessions/{session_id}/start"
    http_count = value(
        via_gateway, "orch_http_request_duration_seconds_count", route=route, method="POST",
        status="200",
    )  # fmt: skip
    assert http_count is not None and http_count >= 1
    # A raw path never becomes a label.
    assert not any(
        dict(labels).get("route", "").count(session_id)
        for name, labels in via_gateway
        if name.startswith("orch_http_request_duration_seconds")
    )
    for schema in ("session", "task"):
        assert (value(samples, "orch_events_published_total", schema=schema) or 0) >= 1
        assert (value(samples, "orch_outbox_backlog", schema=schema) or 0) >= 0
        assert (value(samples, "orch_outbox_oldest_age_seconds", schema=schema) or 0) >= 0
    pending = value(
        samples,
        "orch_consumer_pending",
        consumer="task-on-session-events",
        stream=settings.stream_name,
    )
    assert pending is not None and pending >= 0
    assert (value(samples, "orch_tasks", status="completed") or 0) >= 1
    assert value(samples, "orch_agents", status="idle") is not None
    used = value(samples, "orch_agent_slots_used")
    total = value(samples, "orch_agent_slots_total")
    assert used is not None and total is not None and 0 <= used <= total
    budget = value(samples, "orch_session_budget_used_ratio_count")
    assert budget is not None and budget >= 1
    assert (value(samples, "orch_session_budget_used_ratio_bucket", le="0.5") or 0) >= 1
