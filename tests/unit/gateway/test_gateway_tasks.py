"""The task routes (CRUD, decomposition, dependencies, graph) against a fake TaskService."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import httpx
import pytest
from google.protobuf.message import Message
from pydantic import BaseModel

from orchestrator.api.common.v1 import taxonomy_pb2
from orchestrator.api.task.v1 import task_pb2 as pb
from orchestrator.gateway.routes import task_models
from tests.unit.gateway.samples import NEW_TASK, SID, create_task

if TYPE_CHECKING:
    from tests.unit.gateway.conftest import RpcErrorFactory
    from tests.unit.gateway.fake_task_service import FakeTaskStub

pytestmark = pytest.mark.timeout(30)

UNKNOWN = "5d1f3a8e-0c3b-4e7d-8f6a-2b9e1c4d7a60"


async def test_create_returns_201_with_the_task_in_spec_json(
    client: httpx.AsyncClient, task_stub: FakeTaskStub
) -> None:
    task = await create_task(client)
    assert (task["status"], task["priority"]) == ("pending", "high")
    assert task["required_capabilities"] == ["refactoring"]
    assert task["estimate"]["pessimistic_hours"] == 6
    assert task["input"] == {"command": "make test"}
    request = task_stub.last
    assert isinstance(request, pb.CreateTaskRequest)
    assert request.complexity == taxonomy_pb2.TASK_COMPLEXITY_MODERATE
    assert (request.requires_approval, request.session_id) == (True, SID)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"priority": "urgent"}, "priority"),
        ({"complexity": "hard"}, "complexity"),
        ({"required_capabilities": ["telepathy"]}, "required_capabilities.0"),
        ({"session_id": "s-1"}, "session_id"),
        ({"depends_on": [SID, "nope"]}, "depends_on.1"),
        ({"estimate": {"optimistic_hours": 1}}, "estimate.most_likely_hours"),
    ],
)
async def test_a_bad_create_body_is_422_naming_the_field(
    client: httpx.AsyncClient, task_stub: FakeTaskStub, change: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/v1/tasks", json={**NEW_TASK, **change})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field
    assert task_stub.requests == []


async def test_list_passes_filters_and_flattens_the_page(
    client: httpx.AsyncClient, task_stub: FakeTaskStub
) -> None:
    parent = await create_task(client)
    response = await client.get(
        "/api/v1/tasks",
        params=[
            ("session_id", SID),
            ("parent_id", parent["id"]),
            ("status", "ready"),
            ("status", "blocked"),
            ("page_size", 20),
        ],
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"tasks", "next_page_token", "total_size"}
    assert body["total_size"] == 1
    request = task_stub.last
    assert isinstance(request, pb.ListTasksRequest)
    assert (request.session_id, request.parent_id) == (SID, parent["id"])
    assert list(request.statuses) == [pb.TASK_STATUS_READY, pb.TASK_STATUS_BLOCKED]
    assert (request.page.page_size, request.roots_only) == (20, False)


async def test_list_refuses_an_unknown_status_and_a_malformed_session(
    client: httpx.AsyncClient,
) -> None:
    status = await client.get("/api/v1/tasks", params={"status": "done"})
    assert (status.status_code, status.json()["error"]["field"]) == (422, "status.0")
    session = await client.get("/api/v1/tasks", params={"session_id": "s-1"})
    assert (session.status_code, session.json()["error"]["field"]) == (422, "session_id")


async def test_get_returns_the_task_and_an_unknown_one_is_404(client: httpx.AsyncClient) -> None:
    task = await create_task(client)
    found = await client.get(f"/api/v1/tasks/{task['id']}")
    assert (found.status_code, found.json()["title"]) == (200, "Split billing.py")
    missing = await client.get(f"/api/v1/tasks/{UNKNOWN}")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/tasks/t-1"),
        ("POST", "/api/v1/tasks/t-1/decompose"),
        ("POST", "/api/v1/tasks/t-1/dependencies"),
        ("DELETE", "/api/v1/tasks/t-1/dependencies"),
    ],
)
async def test_a_malformed_task_id_is_422(
    client: httpx.AsyncClient, task_stub: FakeTaskStub, method: str, path: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "task_id"
    assert task_stub.requests == []


async def test_decompose_returns_the_parent_subtasks_and_dependencies(
    client: httpx.AsyncClient, task_stub: FakeTaskStub
) -> None:
    task = await create_task(client)
    response = await client.post(
        f"/api/v1/tasks/{task['id']}/decompose", json={"template": "microservice", "max_depth": 2}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"task", "subtasks", "dependencies"}
    assert body["task"]["child_ids"] == [sub["id"] for sub in body["subtasks"]]
    assert body["dependencies"][0]["successor_id"] == body["subtasks"][1]["id"]
    request = task_stub.last
    assert isinstance(request, pb.DecomposeTaskRequest)
    assert (request.template, request.max_depth) == (pb.DECOMPOSITION_TEMPLATE_MICROSERVICE, 2)


async def test_decompose_refuses_an_unknown_template(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/api/v1/tasks/{UNKNOWN}/decompose", json={"template": "web"})
    assert (response.status_code, response.json()["error"]["field"]) == (422, "template")


async def test_add_dependency_returns_201_with_task_and_dependency(
    client: httpx.AsyncClient, task_stub: FakeTaskStub
) -> None:
    first, second = await create_task(client), await create_task(client)
    response = await client.post(
        f"/api/v1/tasks/{second['id']}/dependencies",
        json={"depends_on_task_id": first["id"], "dependency_type": "start_to_start"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["dependency"] == {
        "predecessor_id": first["id"],
        "successor_id": second["id"],
        "dependency_type": "start_to_start",
        "lag_hours": None,
        "created_at": None,
    }
    assert body["task"]["dependencies"] == [body["dependency"]]


async def test_a_dependency_closing_a_cycle_is_409_naming_it(client: httpx.AsyncClient) -> None:
    first, second = await create_task(client), await create_task(client)
    path = f"/api/v1/tasks/{second['id']}/dependencies"
    assert (await client.post(path, json={"depends_on_task_id": first["id"]})).status_code == 201
    response = await client.post(
        f"/api/v1/tasks/{first['id']}/dependencies", json={"depends_on_task_id": second["id"]}
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "dependency_cycle"
    assert f"{first['id']} → {second['id']} → {first['id']}" in error["message"]


async def test_add_dependency_validates_its_body(client: httpx.AsyncClient) -> None:
    path = f"/api/v1/tasks/{UNKNOWN}/dependencies"
    kind = await client.post(path, json={"depends_on_task_id": SID, "dependency_type": "soon"})
    assert (kind.status_code, kind.json()["error"]["field"]) == (422, "dependency_type")
    missing = await client.post(path, json={})
    assert (missing.status_code, missing.json()["error"]["field"]) == (422, "depends_on_task_id")


async def _linked(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    first, second = await create_task(client), await create_task(client)
    await client.post(
        f"/api/v1/tasks/{second['id']}/dependencies", json={"depends_on_task_id": first["id"]}
    )
    return first, second


async def test_remove_dependency_takes_the_query(
    client: httpx.AsyncClient, task_stub: FakeTaskStub
) -> None:
    first, second = await _linked(client)
    response = await client.delete(
        f"/api/v1/tasks/{second['id']}/dependencies",
        params={"depends_on_task_id": first["id"], "expected_version": 1},
    )
    assert (response.status_code, response.json()["dependencies"]) == (200, [])
    request = task_stub.last
    assert isinstance(request, pb.RemoveDependencyRequest)
    assert (request.depends_on_task_id, request.expected_version) == (first["id"], 1)


async def test_remove_dependency_takes_a_body(
    client: httpx.AsyncClient, task_stub: FakeTaskStub
) -> None:
    first, second = await _linked(client)
    response = await client.request(
        "DELETE",
        f"/api/v1/tasks/{second['id']}/dependencies",
        json={"depends_on_task_id": first["id"], "actor": "ops"},
    )
    assert (response.status_code, response.json()["dependencies"]) == (200, [])
    assert task_stub.last.actor == "ops"


@pytest.mark.parametrize(
    ("params", "body", "message"),
    [
        ({}, None, "required"),
        ({"depends_on_task_id": SID}, {"depends_on_task_id": UNKNOWN}, "differs"),
    ],
)
async def test_remove_dependency_needs_one_predecessor(
    client: httpx.AsyncClient,
    task_stub: FakeTaskStub,
    params: dict[str, str],
    body: dict[str, str] | None,
    message: str,
) -> None:
    response = await client.request(
        "DELETE", f"/api/v1/tasks/{UNKNOWN}/dependencies", params=params, json=body
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "depends_on_task_id"
    assert message in response.json()["error"]["message"]
    assert task_stub.requests == []


async def test_the_graph_has_nodes_edges_critical_path_and_finish(
    client: httpx.AsyncClient, task_stub: FakeTaskStub
) -> None:
    first, second = await _linked(client)
    response = await client.get(f"/api/v1/sessions/{SID}/graph")
    assert response.status_code == 200
    graph = response.json()
    assert [node["task_id"] for node in graph["nodes"]] == [first["id"], second["id"]]
    assert graph["nodes"][0]["status"] == "pending"
    assert graph["edges"][0]["predecessor_id"] == first["id"]
    assert graph["critical_path"]["task_ids"] == [first["id"], second["id"]]
    assert graph["critical_path"]["expected_hours"] == 3.5
    assert graph["expected_finish_at"] == "2025-03-01T15:30:00Z"
    assert task_stub.last == pb.GetGraphRequest(session_id=SID)


async def test_the_graph_of_a_malformed_session_id_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/sessions/s-1/graph")
    assert (response.status_code, response.json()["error"]["field"]) == (422, "session_id")


async def test_the_task_service_being_down_is_503(
    client: httpx.AsyncClient, task_stub: FakeTaskStub, make_rpc_error: RpcErrorFactory
) -> None:
    task_stub.fail_with = make_rpc_error(grpc.StatusCode.UNAVAILABLE, "connection refused")
    response = await client.get(f"/api/v1/sessions/{SID}/graph")
    assert (response.status_code, response.json()["error"]["code"]) == (503, "unavailable")


@pytest.mark.parametrize(
    ("body", "request_type"),
    [
        (task_models.CreateTaskBody, pb.CreateTaskRequest),
        (task_models.EstimateBody, pb.PertEstimate),
        (task_models.DecomposeTaskBody, pb.DecomposeTaskRequest),
        (task_models.AddDependencyBody, pb.AddDependencyRequest),
        (task_models.RemoveDependencyBody, pb.RemoveDependencyRequest),
    ],
    ids=lambda item: item.__name__,
)
def test_every_body_field_exists_in_its_request_message(
    body: type[BaseModel], request_type: type[Message]
) -> None:
    assert set(body.model_fields) <= set(request_type.DESCRIPTOR.fields_by_name)
