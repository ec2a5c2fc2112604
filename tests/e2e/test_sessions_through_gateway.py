"""End to end: HTTP and WebSocket through the gateway, the session service over gRPC, real
PostgreSQL and NATS JetStream underneath."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets

pytestmark = pytest.mark.timeout(60)

BODY = {
    "title": "IND-42 refactor the billing module",
    "initial_prompt": "Split billing.py into invoices and payments.",
    "session_type": "execution",
    "priority": "high",
    "model_identifier": "local/scripted",
    "tags": ["e2e"],
}


@pytest.fixture
async def http(gateway: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway, timeout=10) as client:
        yield client


async def _next_event(ws: Any, event_type: str) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message.get("event", {}).get("type") == event_type:
            return message


async def test_create_start_and_watch_over_websocket(http: httpx.AsyncClient, gateway: str) -> None:
    created = await http.post("/api/v1/sessions", json=BODY)
    assert created.status_code == 201, created.text
    session = created.json()
    assert session["status"] == "pending" and session["session_type"] == "execution"
    assert session["version"] == 1 and isinstance(session["version"], int)
    sid = session["id"]

    ws_url = gateway.replace("http://", "ws://") + f"/ws/sessions/{sid}"
    async with websockets.connect(ws_url) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert hello["type"] == "hello" and isinstance(hello["last_seq"], int)
        started = await http.post(f"/api/v1/sessions/{sid}/start", json={"expected_version": 1})
        assert started.status_code == 200, started.text
        assert started.json()["status"] == "running"
        message = await _next_event(ws, "session.started")
    event = message["event"]
    assert event["aggregate_id"] == sid and event["session"]["session"]["status"] == "running"
    assert event["session"]["previous_status"] == "pending"

    # Resume: everything after an earlier sequence is replayed, the start included.
    since = hello["last_seq"]
    async with websockets.connect(f"{ws_url}?since={since}") as ws:
        await asyncio.wait_for(ws.recv(), 10)
        replayed = await _next_event(ws, "session.started")
    assert replayed["seq"] == message["seq"]

    fetched = await http.get(f"/api/v1/sessions/{sid}")
    assert fetched.json()["version"] == 2


async def test_all_sessions_socket_sees_new_sessions(http: httpx.AsyncClient, gateway: str) -> None:
    async with websockets.connect(gateway.replace("http://", "ws://") + "/ws/sessions") as ws:
        await asyncio.wait_for(ws.recv(), 10)
        sid = (await http.post("/api/v1/sessions", json=BODY)).json()["id"]
        message = await _next_event(ws, "session.created")
        while message["event"]["aggregate_id"] != sid:
            message = await _next_event(ws, "session.created")
    assert message["subject"] == f"orch.session.{sid}.created"


async def test_bad_input_gets_clear_errors_and_changes_nothing(http: httpx.AsyncClient) -> None:
    tag = f"t{uuid.uuid4().hex[:10]}"
    bad = await http.post("/api/v1/sessions", json={**BODY, "title": "", "tags": [tag]})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "title"
    long_prompt = await http.post("/api/v1/sessions", json={**BODY, "initial_prompt": "p" * 10_001})
    assert long_prompt.status_code == 422
    assert long_prompt.json()["error"]["field"] == "initial_prompt"
    wrong_enum = await http.post("/api/v1/sessions", json={**BODY, "priority": "urgent"})
    assert wrong_enum.status_code == 422
    listed = await http.get("/api/v1/sessions", params={"tag": tag})
    assert listed.status_code == 200 and listed.json()["total_size"] == 0

    sid = (await http.post("/api/v1/sessions", json=BODY)).json()["id"]
    refused = await http.post(f"/api/v1/sessions/{sid}/complete")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "failed_precondition"
    assert "pending" in refused.json()["error"]["message"]
    stale = await http.post(f"/api/v1/sessions/{sid}/start", json={"expected_version": 5})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "aborted"
    missing = await http.get(f"/api/v1/sessions/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    malformed = await http.get("/api/v1/sessions/not-a-uuid")
    assert malformed.status_code == 422
    huge = await http.post(
        "/api/v1/sessions",
        content=b"{" + b" " * (2 << 20) + b"}",
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    after = await http.get(f"/api/v1/sessions/{sid}")
    assert after.json()["version"] == 1 and after.json()["status"] == "pending"


async def test_checkpoints_delete_and_listing(http: httpx.AsyncClient) -> None:
    tag = f"t{uuid.uuid4().hex[:10]}"
    sid = (await http.post("/api/v1/sessions", json={**BODY, "tags": [tag]})).json()["id"]
    await http.post(f"/api/v1/sessions/{sid}/start")
    cp = await http.post(f"/api/v1/sessions/{sid}/checkpoints", json={"data": {"step": 1}})
    assert cp.status_code == 201 and cp.json()["checkpoint"]["sequence"] == 1
    listed = await http.get(f"/api/v1/sessions/{sid}/checkpoints")
    assert [c["data"] for c in listed.json()["checkpoints"]] == [{"step": 1}]
    running = await http.get("/api/v1/sessions", params={"tag": tag, "status": "running"})
    assert [s["id"] for s in running.json()["sessions"]] == [sid]
    refused = await http.delete(f"/api/v1/sessions/{sid}")
    assert refused.status_code == 409
    await http.post(f"/api/v1/sessions/{sid}/stop", json={"reason": "done for today"})
    deleted = await http.delete(f"/api/v1/sessions/{sid}")
    assert deleted.status_code == 200 and deleted.json()["deleted_at"] is not None
    assert (await http.get(f"/api/v1/sessions/{sid}")).status_code == 404


async def test_health_ready_and_openapi(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health")).json()["status"] == "ok"
    assert (await http.get("/live")).status_code == 200
    ready = await http.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    checks = ready.json()["checks"]
    assert {name: c["status"] for name, c in checks.items()} == {
        "postgres": "ok",
        "redis": "ok",
        "nats": "ok",
        "session": "ok",
        "agent": "ok",
        "task": "ok",
        "context": "ok",
    }
    paths = (await http.get("/openapi.json")).json()["paths"]
    for action in ("start", "pause", "resume", "stop", "cancel", "retry", "complete", "fail"):
        assert f"/api/v1/sessions/{{session_id}}/{action}" in paths
    assert (await http.get("/docs")).status_code == 200
