"""The session routes against a fake SessionService: status codes, JSON shapes, error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import pytest
from google.protobuf.message import Message
from pydantic import BaseModel

from orchestrator.api.session.v1 import session_pb2 as pb
from orchestrator.common.settings import Settings
from orchestrator.gateway.routes import session_models

if TYPE_CHECKING:
    from tests.unit.gateway.conftest import FakeSessionStub, RpcErrorFactory

pytestmark = pytest.mark.timeout(30)

NEW_SESSION: dict[str, Any] = {
    "title": "IND-7 split billing",
    "initial_prompt": "Split billing.py into one module per concept.",
    "session_type": "execution",
    "priority": "high",
    "tags": ["billing"],
    "metadata": {"ticket": 7},
    "limits": {"token_budget": 5_000_000_000, "max_retries": 2},
}


async def _create(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post("/api/v1/sessions", json=NEW_SESSION)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_returns_201_with_the_session_in_spec_json(
    client: httpx.AsyncClient, session_stub: FakeSessionStub
) -> None:
    session = await _create(client)
    assert session["status"] == "pending"
    assert session["session_type"] == "execution"
    assert session["priority"] == "high"
    assert session["metadata"] == {"ticket": 7}
    assert session["limits"]["token_budget"] == 5_000_000_000
    assert session["created_at"] == "2025-03-01T12:00:00Z"
    request = session_stub.requests[0]
    assert isinstance(request, pb.CreateSessionRequest)
    assert request.priority == pb.SESSION_PRIORITY_HIGH
    assert request.limits.max_retries == 2


async def test_a_wrong_enum_string_is_422_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/sessions", json={**NEW_SESSION, "session_type": "nightly"}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_argument"
    assert error["field"] == "session_type"
    assert "execution" in error["message"]


async def test_a_nested_field_error_is_named_by_its_dotted_path(client: httpx.AsyncClient) -> None:
    body = {**NEW_SESSION, "limits": {"max_retries": "many"}}
    response = await client.post("/api/v1/sessions", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "limits.max_retries"


async def test_an_int32_overflow_is_422_not_500(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/sessions", json={**NEW_SESSION, "max_duration_seconds": 2**40}
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "max_duration_seconds"


@pytest.mark.parametrize("body", [b'{"title": ', b"[1, 2]", b'"text"', b"\xff\xfe\x00"])
async def test_malformed_json_is_422(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(
        "/api/v1/sessions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] in ("invalid_json", "invalid_argument")


async def test_an_unknown_body_field_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/sessions", json={**NEW_SESSION, "titel": "typo"})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "titel"


async def test_a_malformed_uuid_in_the_path_is_422(
    client: httpx.AsyncClient, session_stub: FakeSessionStub
) -> None:
    for method, path in [
        ("GET", "/api/v1/sessions/not-a-uuid"),
        ("POST", "/api/v1/sessions/1234/start"),
        ("DELETE", "/api/v1/sessions/xyz"),
    ]:
        response = await client.request(method, path)
        assert response.status_code == 422, path
        assert response.json()["error"]["field"] == "session_id"
    assert session_stub.requests == []


async def test_an_unknown_session_is_404_from_the_service(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/sessions/0b9c4c1e-8f1a-4f57-9a58-8f3d8c7a2f10")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "does not exist" in response.json()["error"]["message"]


async def test_failed_precondition_is_409_with_the_services_code_and_message(
    client: httpx.AsyncClient, session_stub: FakeSessionStub, make_rpc_error: RpcErrorFactory
) -> None:
    session = await _create(client)
    session_stub.fail_with = make_rpc_error(
        grpc.StatusCode.FAILED_PRECONDITION,
        "session cannot go from completed to running",
        error_code="invalid_transition",
        field="status",
    )
    response = await client.post(f"/api/v1/sessions/{session['id']}/start")
    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "invalid_transition",
            "message": "session cannot go from completed to running",
            "field": "status",
        }
    }


async def test_a_status_without_trailers_uses_the_grpc_code_name(
    client: httpx.AsyncClient, session_stub: FakeSessionStub, make_rpc_error: RpcErrorFactory
) -> None:
    session_stub.fail_with = make_rpc_error(grpc.StatusCode.UNAVAILABLE, "connection refused")
    response = await client.get("/api/v1/sessions")
    assert response.status_code == 503
    assert response.json()["error"] == {
        "code": "unavailable",
        "message": "connection refused",
        "field": None,
    }


async def test_an_action_passes_its_body_and_returns_the_updated_session(
    client: httpx.AsyncClient, session_stub: FakeSessionStub
) -> None:
    session = await _create(client)
    response = await client.post(
        f"/api/v1/sessions/{session['id']}/start", json={"expected_version": 1, "actor": "ops"}
    )
    assert response.status_code == 200
    assert response.json()["status"] == "running"
    assert response.json()["version"] == 2
    request = session_stub.requests[-1]
    assert isinstance(request, pb.StartSessionRequest)
    assert (request.session_id, request.expected_version, request.actor) == (
        session["id"],
        1,
        "ops",
    )


async def test_an_action_without_a_body_leaves_expected_version_unset(
    client: httpx.AsyncClient, session_stub: FakeSessionStub
) -> None:
    session = await _create(client)
    response = await client.post(f"/api/v1/sessions/{session['id']}/pause")
    assert response.status_code == 200
    request = session_stub.requests[-1]
    assert isinstance(request, pb.PauseSessionRequest)
    assert not request.HasField("expected_version")


async def test_retry_returns_the_session_with_resume_from(client: httpx.AsyncClient) -> None:
    session = await _create(client)
    response = await client.post(f"/api/v1/sessions/{session['id']}/retry")
    assert response.status_code == 200
    assert response.json()["id"] == session["id"]
    assert response.json()["resume_from"] is None


async def test_list_passes_filters_and_flattens_the_page(
    client: httpx.AsyncClient, session_stub: FakeSessionStub
) -> None:
    await _create(client)
    response = await client.get(
        "/api/v1/sessions",
        params=[("status", "running"), ("status", "paused"), ("tag", "billing"), ("page_size", 5)],
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"sessions", "next_page_token", "total_size"}
    assert body["total_size"] == 1 and len(body["sessions"]) == 1
    request = session_stub.requests[-1]
    assert isinstance(request, pb.ListSessionsRequest)
    assert list(request.statuses) == [pb.SESSION_STATUS_RUNNING, pb.SESSION_STATUS_PAUSED]
    assert list(request.tags) == ["billing"]
    assert request.page.page_size == 5


async def test_list_refuses_an_unknown_status_filter(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/sessions", params={"status": "sleeping"})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "status.0"


async def test_add_checkpoint_returns_201_with_checkpoint_and_session(
    client: httpx.AsyncClient,
) -> None:
    session = await _create(client)
    response = await client.post(
        f"/api/v1/sessions/{session['id']}/checkpoints",
        json={"data": {"step": 3}, "created_by": "worker-1", "sequence": 3},
    )
    assert response.status_code == 201
    assert response.json()["checkpoint"]["data"] == {"step": 3}
    assert response.json()["checkpoint"]["sequence"] == 3
    assert response.json()["session"]["id"] == session["id"]


async def test_delete_returns_the_deleted_session(client: httpx.AsyncClient) -> None:
    session = await _create(client)
    response = await client.delete(f"/api/v1/sessions/{session['id']}")
    assert response.status_code == 200
    assert response.json()["id"] == session["id"]


async def test_an_oversize_body_is_413(client: httpx.AsyncClient, settings: Settings) -> None:
    big = {**NEW_SESSION, "initial_prompt": "x" * (settings.gateway_max_body_bytes + 1)}
    response = await client.post("/api/v1/sessions", json=big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_an_oversize_chunked_body_is_413(
    client: httpx.AsyncClient, session_stub: FakeSessionStub, settings: Settings
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b" " * (settings.gateway_max_body_bytes // 4)

    response = await client.post(
        "/api/v1/sessions", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert session_stub.requests == []


async def test_an_unknown_route_is_a_json_404(client: httpx.AsyncClient) -> None:
    for method in ("GET", "POST", "DELETE"):
        response = await client.request(method, "/api/v1/nothing-here")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        assert response.json()["error"]["field"] is None


async def test_openapi_documents_the_session_routes(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert {"post", "get"} <= set(paths["/api/v1/sessions"])
    assert {"get", "delete"} <= set(paths["/api/v1/sessions/{session_id}"])
    for action in (
        "start",
        "queue",
        "pause",
        "resume",
        "stop",
        "cancel",
        "retry",
        "complete",
        "fail",
        "degrade",
    ):
        assert "post" in paths[f"/api/v1/sessions/{{session_id}}/{action}"], action
    assert {"post", "get"} <= set(paths["/api/v1/sessions/{session_id}/checkpoints"])
    schemas = spec["components"]["schemas"]
    session_type = schemas["CreateSessionBody"]["properties"]["session_type"]["anyOf"][0]
    assert session_type["enum"] == ["planning", "execution", "review", "debug", "integration"]
    assert "Session" in schemas and "ErrorJson" in schemas
    assert "HTTPValidationError" not in schemas  # our error shape replaces FastAPI's


@pytest.mark.parametrize(
    ("body", "request_type"),
    [
        (session_models.CreateSessionBody, pb.CreateSessionRequest),
        (session_models.SessionLimitsBody, pb.SessionLimits),
        (session_models.TransitionBody, pb.StartSessionRequest),
        (session_models.ReasonBody, pb.PauseSessionRequest),
        (session_models.ReasonBody, pb.StopSessionRequest),
        (session_models.ReasonBody, pb.CancelSessionRequest),
        (session_models.ReasonBody, pb.DegradeSessionRequest),
        (session_models.FailBody, pb.FailSessionRequest),
        (session_models.CompleteBody, pb.CompleteSessionRequest),
        (session_models.CheckpointBody, pb.AddCheckpointRequest),
    ],
    ids=lambda item: item.__name__,
)
def test_every_body_field_exists_in_its_request_message(
    body: type[BaseModel], request_type: type[Message]
) -> None:
    assert set(body.model_fields) <= set(request_type.DESCRIPTOR.fields_by_name)
