"""End to end for agents, tasks and contexts: HTTP through the gateway to the real services."""

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


@pytest.fixture
async def http(gateway: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway + "/api/v1", timeout=15) as client:
        yield client


def _name() -> str:
    return f"AGENT-E2E-{uuid.uuid4().hex[:8].upper()}"


async def _register(http: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    body = {
        "name": _name(),
        "agent_type": "implementer",
        "primary_capabilities": ["code_generation"],
        "secondary_capabilities": ["testing"],
        "preferred_technologies": ["python"],
        "max_concurrent_tasks": 2,
        **overrides,
    }
    reply = await http.post("/agents", json=body)
    assert reply.status_code == 201, reply.text
    agent: dict[str, Any] = reply.json()
    beat = await http.post(f"/agents/{agent['id']}/heartbeat", json={})
    assert beat.status_code == 200, beat.text
    return agent


async def test_agents_register_route_and_refuse_bad_input(http: httpx.AsyncClient) -> None:
    capability = "security_audit"
    strong = await _register(http, primary_capabilities=[capability, "code_generation"])
    weak = await _register(
        http, primary_capabilities=["code_generation"], secondary_capabilities=[capability]
    )
    duplicate = await http.post(
        "/agents",
        json={
            "name": strong["name"],
            "agent_type": "reviewer",
            "primary_capabilities": ["code_review"],
        },
    )
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "already_exists"
    bad_name = await http.post(
        "/agents",
        json={
            "name": "agent one",
            "agent_type": "reviewer",
            "primary_capabilities": ["code_review"],
        },
    )
    assert bad_name.status_code == 422 and bad_name.json()["error"]["field"] == "name"
    bad_capability = await http.post(
        "/agents",
        json={"name": _name(), "agent_type": "reviewer", "primary_capabilities": ["juggling"]},
    )
    assert bad_capability.status_code == 422

    routed = await http.post(
        "/agents/route",
        json={
            "required_capabilities": [capability],
            "technologies": ["python"],
            "excluded_agent_ids": [],
        },
    )
    assert routed.status_code == 200, routed.text
    ids = [c["agent_id"] for c in routed.json()["candidates"]]
    assert strong["id"] in ids and weak["id"] in ids
    assert ids.index(strong["id"]) < ids.index(weak["id"])  # primary beats secondary
    assert routed.json()["score"]["total"] > 0

    drained = await http.post(f"/agents/{strong['id']}/drain", json={})
    assert drained.json()["status"] == "draining"
    await http.delete(f"/agents/{weak['id']}")
    nobody = await http.post("/agents/route", json={"required_capabilities": [capability]})
    assert nobody.status_code == 409
    listed = await http.get("/agents", params={"capability": capability, "status": "draining"})
    assert strong["id"] in [a["id"] for a in listed.json()["agents"]]


async def test_tasks_decompose_depend_and_graph(http: httpx.AsyncClient, gateway: str) -> None:
    session_id = str(uuid.uuid4())
    ws_url = gateway.replace("http://", "ws://") + f"/ws/sessions/{session_id}"
    async with websockets.connect(ws_url) as ws:
        await asyncio.wait_for(ws.recv(), 10)
        root = await http.post(
            "/tasks",
            json={
                "session_id": session_id,
                "title": "Build the orders microservice",
                "description": "A REST API with a service layer and a PostgreSQL data layer.",
                "estimate": {
                    "optimistic_hours": 4,
                    "most_likely_hours": 8,
                    "pessimistic_hours": 16,
                },
            },
        )
        assert root.status_code == 201, root.text
        created = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert created["event"]["type"] == "task.created"
    root_id = root.json()["id"]

    decomposed = await http.post(
        f"/tasks/{root_id}/decompose", json={"template": "microservice", "max_depth": 1}
    )
    assert decomposed.status_code == 200, decomposed.text
    subtasks = decomposed.json()["subtasks"]
    assert len(subtasks) >= 4
    assert all(s["parent_id"] == root_id for s in subtasks)

    first, second = subtasks[0]["id"], subtasks[1]["id"]
    edge = await http.post(f"/tasks/{first}/dependencies", json={"depends_on_task_id": second})
    assert edge.status_code in (201, 422)
    back = await http.post(f"/tasks/{second}/dependencies", json={"depends_on_task_id": first})
    cyclic = back if edge.status_code == 201 else edge
    assert cyclic.status_code == 422 and "cycle" in cyclic.json()["error"]["message"]
    itself = await http.post(f"/tasks/{first}/dependencies", json={"depends_on_task_id": first})
    assert itself.status_code == 422

    graph = await http.get(f"/sessions/{session_id}/graph")
    assert graph.status_code == 200, graph.text
    body = graph.json()
    assert {n["task_id"] for n in body["nodes"]} >= {root_id, first, second}
    path = body["critical_path"]
    assert path["task_ids"] and path["expected_hours"] > 0
    assert body["expected_finish_at"] is not None
    assert root_id not in body["topological_order"]  # parents are nodes, not scheduled work
    listed = await http.get("/tasks", params={"session_id": session_id, "parent_id": root_id})
    assert sorted(t["id"] for t in listed.json()["tasks"]) == sorted(s["id"] for s in subtasks)


async def test_contexts_update_diff_merge_and_history(http: httpx.AsyncClient) -> None:
    owner = str(uuid.uuid4())
    created = await http.post(
        "/contexts",
        json={"scope": "session", "owner_id": owner, "data": {"config": {"model": "a/b"}}},
    )
    assert created.status_code == 201, created.text
    ctx = created.json()
    patch = {
        "expected_version": ctx["version"],
        "operations": [{"op": "set", "path": "config.temperature", "value": 0.2}],
        "changed_by": "e2e",
    }
    updated = await http.patch(f"/contexts/{ctx['id']}", json=patch)
    assert updated.status_code == 200, updated.text
    assert updated.json()["version"] == ctx["version"] + 1
    stale = await http.patch(f"/contexts/{ctx['id']}", json=patch)
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "aborted"
    crossing = await http.patch(
        f"/contexts/{ctx['id']}",
        json={"operations": [{"op": "set", "path": "config.model.name", "value": 1}]},
    )
    assert crossing.status_code == 422
    value = await http.get(f"/contexts/{ctx['id']}", params={"path": "config.temperature"})
    assert value.json()["value"] == 0.2

    clone = await http.post(
        f"/contexts/{ctx['id']}/clone", json={"scope": "agent", "owner_id": "AGENT-X"}
    )
    assert clone.status_code == 201, clone.text
    other = clone.json()
    await http.patch(
        f"/contexts/{other['id']}",
        json={"operations": [{"op": "set", "path": "config.model", "value": "c/d"}]},
    )
    diff = await http.get(f"/contexts/{ctx['id']}/diff/{other['id']}")
    assert diff.status_code == 200
    assert any(e["path"] == "config.model" for e in diff.json()["changed"])
    manual = await http.post(
        "/contexts/merge",
        json={
            "source_context_id": other["id"],
            "target_context_id": ctx["id"],
            "strategy": "manual",
        },
    )
    assert manual.status_code == 200 and manual.json()["merged"] is False
    itself = await http.post(
        "/contexts/merge",
        json={
            "source_context_id": ctx["id"],
            "target_context_id": ctx["id"],
            "strategy": "deep_merge",
        },
    )
    assert itself.status_code == 422
    merged = await http.post(
        "/contexts/merge",
        json={
            "source_context_id": other["id"],
            "target_context_id": ctx["id"],
            "strategy": "prefer_source",
        },
    )
    assert merged.status_code == 200 and merged.json()["merged"] is True
    assert merged.json()["context"]["data"]["config"]["model"] == "c/d"
    history = await http.get(f"/contexts/{ctx['id']}/history")
    assert [c["path"] for c in history.json()["changes"]][:1] == ["config.temperature"]
