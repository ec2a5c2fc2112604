"""The agent routes against a fake AgentService: status codes, JSON shapes, error mapping."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest
from google.protobuf.message import Message
from pydantic import BaseModel

from orchestrator.api.agent.v1 import agent_pb2 as pb
from orchestrator.api.common.v1 import taxonomy_pb2
from orchestrator.gateway.routes import agent_models

if TYPE_CHECKING:
    from tests.unit.gateway.fake_agent_service import FakeAgentStub

pytestmark = pytest.mark.timeout(30)

TASK_ID = "7c0f1a52-3b8e-4d8a-9f65-0e2b6f1d9a11"
UNKNOWN = "0b9c4c1e-8f1a-4f57-9a58-8f3d8c7a2f10"
NEW_AGENT: dict[str, Any] = {
    "name": "AGENT-IMPL-1",
    "agent_type": "implementer",
    "primary_capabilities": ["code_generation", "testing"],
    "secondary_capabilities": ["refactoring"],
    "preferred_technologies": ["python"],
    "executor_kind": "opencode",
    "executor_endpoint": "http://127.0.0.1:4096",
    "max_concurrent_tasks": 2,
    "metadata": {"zone": "a"},
}


async def _register(client: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/agents", json={**NEW_AGENT, **changes})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_register_returns_201_with_the_agent_in_spec_json(
    client: httpx.AsyncClient, agent_stub: FakeAgentStub
) -> None:
    agent = await _register(client)
    assert agent["status"] == "registering"
    assert agent["agent_type"] == "implementer"
    assert agent["primary_capabilities"] == ["code_generation", "testing"]
    assert agent["executor_kind"] == "opencode"
    assert agent["performance"]["tier"] == "competent"
    assert agent["metadata"] == {"zone": "a"}
    request = agent_stub.last
    assert isinstance(request, pb.RegisterAgentRequest)
    assert list(request.primary_capabilities) == [
        taxonomy_pb2.CAPABILITY_CODE_GENERATION,
        taxonomy_pb2.CAPABILITY_TESTING,
    ]
    assert request.max_concurrent_tasks == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"agent_type": "wizard"}, "agent_type"),
        ({"primary_capabilities": ["code_generation", "juggling"]}, "primary_capabilities.1"),
        ({"executor_kind": "docker"}, "executor_kind"),
        ({"agent_id": "agent-1"}, "agent_id"),
        ({"max_concurrent_tasks": "two"}, "max_concurrent_tasks"),
        ({"nmae": "typo"}, "nmae"),
    ],
)
async def test_a_bad_register_body_is_422_naming_the_field(
    client: httpx.AsyncClient, agent_stub: FakeAgentStub, change: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/v1/agents", json={**NEW_AGENT, **change})
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_argument", field)
    assert agent_stub.requests == []


async def test_a_bad_enum_names_the_allowed_values(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/agents", json={**NEW_AGENT, "agent_type": "wizard"})
    assert "implementer" in response.json()["error"]["message"]


async def test_list_passes_filters_and_flattens_the_page(
    client: httpx.AsyncClient, agent_stub: FakeAgentStub
) -> None:
    await _register(client)
    response = await client.get(
        "/api/v1/agents",
        params=[
            ("agent_type", "implementer"),
            ("capability", "testing"),
            ("status", "idle"),
            ("status", "busy"),
            ("tier", "elite"),
            ("page_size", 10),
            ("page_token", "abc"),
        ],
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"agents", "next_page_token", "total_size"}
    assert (len(body["agents"]), body["total_size"], body["next_page_token"]) == (1, 1, "more")
    request = agent_stub.last
    assert isinstance(request, pb.ListAgentsRequest)
    assert list(request.agent_types) == [pb.AGENT_TYPE_IMPLEMENTER]
    assert list(request.capabilities) == [taxonomy_pb2.CAPABILITY_TESTING]
    assert list(request.statuses) == [pb.AGENT_STATUS_IDLE, pb.AGENT_STATUS_BUSY]
    assert list(request.tiers) == [pb.PERFORMANCE_TIER_ELITE]
    assert (request.page.page_size, request.page.page_token) == (10, "abc")


async def test_list_refuses_an_unknown_filter_value(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/agents", params={"tier": "legendary"})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "tier.0"


async def test_get_returns_the_agent_and_an_unknown_one_is_404(client: httpx.AsyncClient) -> None:
    agent = await _register(client)
    found = await client.get(f"/api/v1/agents/{agent['id']}")
    assert (found.status_code, found.json()["name"]) == (200, "AGENT-IMPL-1")
    missing = await client.get(f"/api/v1/agents/{UNKNOWN}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/agents/not-a-uuid"),
        ("DELETE", "/api/v1/agents/1234"),
        ("POST", "/api/v1/agents/xyz/heartbeat"),
        ("POST", "/api/v1/agents/xyz/drain"),
        ("POST", "/api/v1/agents/xyz/results"),
    ],
)
async def test_a_malformed_agent_id_is_422(
    client: httpx.AsyncClient, agent_stub: FakeAgentStub, method: str, path: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "agent_id"
    assert agent_stub.requests == []


async def test_route_returns_the_winner_its_score_and_the_candidates(
    client: httpx.AsyncClient, agent_stub: FakeAgentStub
) -> None:
    agent = await _register(client)
    body = {
        "required_capabilities": ["testing"],
        "technologies": ["python"],
        "session_type": "execution",
        "complexity": "moderate",
        "task_id": TASK_ID,
        "reserve": True,
    }
    response = await client.post("/api/v1/agents/route", json=body)
    assert response.status_code == 200
    routed = response.json()
    assert set(routed) == {"agent", "score", "candidates"}
    assert routed["agent"]["id"] == agent["id"]
    assert routed["score"]["capability_fit"] == 1.0
    assert routed["candidates"][0]["agent_name"] == "AGENT-IMPL-1"
    request = agent_stub.last
    assert isinstance(request, pb.RouteTaskRequest)
    assert (request.task_id, request.reserve) == (TASK_ID, True)
    assert request.complexity == taxonomy_pb2.TASK_COMPLEXITY_MODERATE


async def test_route_with_no_fit_is_409_saying_why(client: httpx.AsyncClient) -> None:
    await _register(client)
    response = await client.post(
        "/api/v1/agents/route", json={"required_capabilities": ["security_audit"]}
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "no_eligible_agent"
    assert "SECURITY_AUDIT" in error["message"]


async def test_route_needs_the_required_capabilities(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/agents/route", json={"technologies": ["go"]})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "required_capabilities"


async def test_heartbeat_returns_the_agent_with_its_ttl(
    client: httpx.AsyncClient, agent_stub: FakeAgentStub
) -> None:
    agent = await _register(client)
    response = await client.post(
        f"/api/v1/agents/{agent['id']}/heartbeat", json={"current_task_ids": [TASK_ID]}
    )
    assert response.status_code == 200
    beat = response.json()
    assert (beat["id"], beat["status"]) == (agent["id"], "busy")
    assert (beat["ttl_seconds"], beat["expires_at"]) == (30, "2025-03-01T12:00:30Z")
    assert beat["load"]["current_task_ids"] == [TASK_ID]
    assert not agent_stub.last.HasField("expected_version")


async def test_a_heartbeat_without_a_body_is_fine(client: httpx.AsyncClient) -> None:
    agent = await _register(client)
    response = await client.post(f"/api/v1/agents/{agent['id']}/heartbeat")
    assert (response.status_code, response.json()["status"]) == (200, "idle")


async def test_a_heartbeat_with_a_malformed_task_id_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"/api/v1/agents/{UNKNOWN}/heartbeat", json={"current_task_ids": ["t-1"]}
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "current_task_ids.0"


async def test_drain_and_deregister_return_the_updated_agent(
    client: httpx.AsyncClient, agent_stub: FakeAgentStub
) -> None:
    agent = await _register(client)
    drained = await client.post(
        f"/api/v1/agents/{agent['id']}/drain", json={"expected_version": 1, "reason": "deploy"}
    )
    assert (drained.status_code, drained.json()["status"]) == (200, "draining")
    assert agent_stub.last.reason == "deploy"
    gone = await client.delete(
        f"/api/v1/agents/{agent['id']}", params={"expected_version": 2, "actor": "ops"}
    )
    assert (gone.status_code, gone.json()["status"]) == (200, "deregistered")
    request = agent_stub.last
    assert isinstance(request, pb.DeregisterAgentRequest)
    assert (request.expected_version, request.actor) == (2, "ops")


async def test_results_fold_an_outcome_into_the_agent(
    client: httpx.AsyncClient, agent_stub: FakeAgentStub
) -> None:
    agent = await _register(client)
    body = {"task_id": TASK_ID, "outcome": "completed", "fencing_token": 3, "quality_score": 0.9}
    response = await client.post(f"/api/v1/agents/{agent['id']}/results", json=body)
    assert response.status_code == 200
    assert response.json()["performance"]["tasks_completed"] == 1
    request = agent_stub.last
    assert isinstance(request, pb.RecordTaskResultRequest)
    assert (request.outcome, request.fencing_token) == (pb.TASK_OUTCOME_COMPLETED, 3)
    assert request.HasField("quality_score")


async def test_results_need_an_outcome_from_the_enum(client: httpx.AsyncClient) -> None:
    path = f"/api/v1/agents/{UNKNOWN}/results"
    missing = await client.post(path, json={"task_id": TASK_ID})
    assert missing.json()["error"]["field"] == "outcome"
    wrong = await client.post(path, json={"task_id": TASK_ID, "outcome": "meh"})
    assert (wrong.status_code, wrong.json()["error"]["field"]) == (422, "outcome")


@pytest.mark.parametrize(
    ("body", "request_type"),
    [
        (agent_models.RegisterAgentBody, pb.RegisterAgentRequest),
        (agent_models.AgentActionBody, pb.DeregisterAgentRequest),
        (agent_models.AgentActionBody, pb.DrainAgentRequest),
        (agent_models.HeartbeatBody, pb.HeartbeatRequest),
        (agent_models.RouteBody, pb.RouteTaskRequest),
        (agent_models.TaskResultBody, pb.RecordTaskResultRequest),
    ],
    ids=lambda item: item.__name__,
)
def test_every_body_field_exists_in_its_request_message(
    body: type[BaseModel], request_type: type[Message]
) -> None:
    assert set(body.model_fields) <= set(request_type.DESCRIPTOR.fields_by_name)
