"""The context routes against a fake ContextService: shapes, PATCH operations, 409s, 422s."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest
from google.protobuf.message import Message
from pydantic import BaseModel

from orchestrator.api.context.v1 import context_pb2 as pb
from orchestrator.gateway.routes import context_models
from tests.unit.gateway.samples import SID

if TYPE_CHECKING:
    from tests.unit.gateway.fake_context_service import FakeContextStub

pytestmark = pytest.mark.timeout(30)

UNKNOWN = "5d1f3a8e-0c3b-4e7d-8f6a-2b9e1c4d7a60"
NEW_CONTEXT: dict[str, Any] = {
    "scope": "session",
    "owner_id": SID,
    "data": {"config": {"model": "anthropic/claude"}, "plan": [1, 2]},
    "actor": "planner",
}


async def _create(client: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/contexts", json={**NEW_CONTEXT, **changes})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_returns_201_with_the_context(
    client: httpx.AsyncClient, context_stub: FakeContextStub
) -> None:
    context = await _create(client)
    assert (context["scope"], context["owner_id"], context["version"]) == ("session", SID, 1)
    assert context["data"] == NEW_CONTEXT["data"]
    request = context_stub.last
    assert isinstance(request, pb.CreateContextRequest)
    assert (request.scope, request.actor) == (pb.CONTEXT_SCOPE_SESSION, "planner")


async def test_create_refuses_an_unknown_scope(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/contexts", json={**NEW_CONTEXT, "scope": "team"})
    assert (response.status_code, response.json()["error"]["field"]) == (422, "scope")
    assert "temporary" in response.json()["error"]["message"]


async def test_list_passes_the_owner_and_flattens_the_page(
    client: httpx.AsyncClient, context_stub: FakeContextStub
) -> None:
    await _create(client)
    response = await client.get(
        "/api/v1/contexts", params={"scope": "session", "owner_id": SID, "owned_only": "true"}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"contexts", "next_page_token", "total_size"}
    assert body["total_size"] == 1
    request = context_stub.last
    assert isinstance(request, pb.ListContextsRequest)
    assert (request.scope, request.owner_id, request.owned_only) == (
        pb.CONTEXT_SCOPE_SESSION,
        SID,
        True,
    )


async def test_get_returns_the_whole_context(client: httpx.AsyncClient) -> None:
    context = await _create(client)
    response = await client.get(f"/api/v1/contexts/{context['id']}")
    assert response.status_code == 200
    assert response.json()["data"] == NEW_CONTEXT["data"]
    assert "value" not in response.json()


async def test_get_with_a_path_returns_the_value_there(
    client: httpx.AsyncClient, context_stub: FakeContextStub
) -> None:
    context = await _create(client)
    response = await client.get(
        f"/api/v1/contexts/{context['id']}", params={"path": "config.model"}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["path"], body["value"]) == ("config.model", "anthropic/claude")
    assert (body["id"], body["data"]) == (context["id"], None)
    assert context_stub.last.path == "config.model"


async def test_get_an_absent_path_or_context_is_404(client: httpx.AsyncClient) -> None:
    context = await _create(client)
    path = await client.get(f"/api/v1/contexts/{context['id']}", params={"path": "config.nope"})
    assert path.status_code == 404
    missing = await client.get(f"/api/v1/contexts/{UNKNOWN}")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")


async def test_patch_applies_operations_as_one_version(
    client: httpx.AsyncClient, context_stub: FakeContextStub
) -> None:
    context = await _create(client)
    body = {
        "expected_version": 1,
        "changed_by": "agent-1",
        "operations": [
            {"op": "set", "path": "status", "value": {"phase": 2}},
            {"op": "set", "path": "note", "value": None},
            {"op": "delete", "path": "plan"},
        ],
    }
    response = await client.patch(f"/api/v1/contexts/{context['id']}", json=body)
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["version"] == 2
    assert updated["data"] == {
        "config": {"model": "anthropic/claude"},
        "status": {"phase": 2},
        "note": None,
    }
    assert [change["path"] for change in updated["changes"]] == ["status", "note", "plan"]
    assert updated["changes"][2]["old_value"] == [1, 2]
    request = context_stub.last
    assert isinstance(request, pb.UpdateContextRequest)
    assert (request.expected_version, request.changed_by) == (1, "agent-1")
    set_null, delete = request.operations[1], request.operations[2]
    assert set_null.operation_type == pb.CONTEXT_OPERATION_TYPE_SET
    assert set_null.value.WhichOneof("kind") == "null_value"
    assert delete.operation_type == pb.CONTEXT_OPERATION_TYPE_DELETE
    assert not delete.HasField("value")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"operations": [{"op": "set", "path": "a"}]}, "operations.0", "needs a value"),
        ({"operations": [{"op": "delete", "path": "a", "value": 1}]}, "operations.0", "no value"),
        ({"operations": [{"op": "move", "path": "a"}]}, "operations.0.op", "delete"),
        ({"operations": [{"op": "set", "value": 1}]}, "operations.0.path", "required"),
        ({"operations": [{"op": "set", "path": "a", "value": 1, "x": 1}]}, "operations.0.x", ""),
        ({"expected_version": 1}, "operations", "required"),
        ({"operations": {"op": "set"}}, "operations", ""),
        ({"operations": [], "expected_version": "one"}, "expected_version", ""),
    ],
)
async def test_patch_validates_its_body(
    client: httpx.AsyncClient,
    context_stub: FakeContextStub,
    body: dict[str, Any],
    field: str,
    message: str,
) -> None:
    response = await client.patch(f"/api/v1/contexts/{UNKNOWN}", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == field
    assert message in error["message"]
    assert context_stub.requests == []


async def test_patch_with_a_stale_version_is_409_aborted(client: httpx.AsyncClient) -> None:
    context = await _create(client)
    response = await client.patch(
        f"/api/v1/contexts/{context['id']}",
        json={"expected_version": 7, "operations": [{"op": "delete", "path": "plan"}]},
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "aborted"
    assert "version 1" in error["message"]
    unchanged = await client.get(f"/api/v1/contexts/{context['id']}")
    assert unchanged.json()["data"]["plan"] == [1, 2]


async def test_merge_returns_the_target_after_the_merge(
    client: httpx.AsyncClient, context_stub: FakeContextStub
) -> None:
    source = await _create(client, data={"a": 1})
    target = await _create(client, data={"b": 2})
    body = {"source_context_id": source["id"], "target_context_id": target["id"]}
    response = await client.post("/api/v1/contexts/merge", json={**body, "strategy": "deep_merge"})
    assert response.status_code == 200
    merged = response.json()
    assert set(merged) == {"context", "changes", "conflicts", "merged"}
    assert (merged["merged"], merged["context"]["data"]) == (True, {"a": 1, "b": 2})
    assert context_stub.last.strategy == pb.MERGE_STRATEGY_DEEP_MERGE


async def test_a_manual_merge_with_conflicts_returns_them(client: httpx.AsyncClient) -> None:
    source = await _create(client, data={"a": 1})
    target = await _create(client, data={"a": 2})
    response = await client.post(
        "/api/v1/contexts/merge",
        json={
            "source_context_id": source["id"],
            "target_context_id": target["id"],
            "strategy": "manual",
        },
    )
    assert response.status_code == 200
    assert response.json()["merged"] is False
    assert response.json()["conflicts"][0] == {
        "path": "a",
        "value": 2,
        "other_value": 1,
        "base_value": None,
    }


async def test_merge_validates_its_body(client: httpx.AsyncClient) -> None:
    body = {"source_context_id": SID, "target_context_id": UNKNOWN, "strategy": "coin_flip"}
    strategy = await client.post("/api/v1/contexts/merge", json=body)
    assert (strategy.status_code, strategy.json()["error"]["field"]) == (422, "strategy")
    ids = await client.post(
        "/api/v1/contexts/merge", json={**body, "strategy": "manual", "source_context_id": "c"}
    )
    assert (ids.status_code, ids.json()["error"]["field"]) == (422, "source_context_id")


async def test_diff_reads_from_one_context_to_the_other(client: httpx.AsyncClient) -> None:
    first = await _create(client, data={"a": 1, "b": 1})
    other = await _create(client, data={"b": 2, "c": 3})
    response = await client.get(f"/api/v1/contexts/{first['id']}/diff/{other['id']}")
    assert response.status_code == 200
    diff = response.json()
    assert [entry["path"] for entry in diff["added"]] == ["c"]
    assert [entry["path"] for entry in diff["removed"]] == ["a"]
    assert diff["changed"][0]["value"] == 1 and diff["changed"][0]["other_value"] == 2


async def test_diff_with_a_malformed_other_id_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/v1/contexts/{UNKNOWN}/diff/other")
    assert (response.status_code, response.json()["error"]["field"]) == (422, "other_context_id")


async def test_history_lists_the_changes_with_pagination(
    client: httpx.AsyncClient, context_stub: FakeContextStub
) -> None:
    context = await _create(client)
    await client.patch(
        f"/api/v1/contexts/{context['id']}",
        json={"operations": [{"op": "set", "path": "x", "value": 1}]},
    )
    response = await client.get(
        f"/api/v1/contexts/{context['id']}/history",
        params={"page_size": 5, "path_prefix": "x", "newest_first": "true"},
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"changes", "next_page_token", "total_size"}
    assert (body["changes"][0]["path"], body["changes"][0]["new_value"]) == ("x", 1)
    request = context_stub.last
    assert isinstance(request, pb.ListContextHistoryRequest)
    assert (request.page.page_size, request.path_prefix, request.newest_first) == (5, "x", True)


async def test_share_returns_the_context_with_its_new_share(client: httpx.AsyncClient) -> None:
    context = await _create(client)
    response = await client.post(
        f"/api/v1/contexts/{context['id']}/share", json={"scope": "agent", "owner_id": UNKNOWN}
    )
    assert response.status_code == 200
    assert response.json()["shared_with"][0]["scope"] == "agent"


async def test_clone_returns_201_with_the_new_context(client: httpx.AsyncClient) -> None:
    context = await _create(client)
    response = await client.post(
        f"/api/v1/contexts/{context['id']}/clone", json={"scope": "temporary", "ttl_seconds": 60}
    )
    assert response.status_code == 201
    clone = response.json()
    assert clone["id"] != context["id"]
    assert (clone["cloned_from_id"], clone["data"]) == (context["id"], context["data"])


async def test_delete_returns_the_deleted_context(
    client: httpx.AsyncClient, context_stub: FakeContextStub
) -> None:
    context = await _create(client)
    response = await client.delete(
        f"/api/v1/contexts/{context['id']}", params={"expected_version": 1, "actor": "ops"}
    )
    assert response.status_code == 200
    assert response.json()["deleted_at"] == "2025-03-01T13:00:00Z"
    assert (context_stub.last.expected_version, context_stub.last.actor) == (1, "ops")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/contexts/c-1"),
        ("PATCH", "/api/v1/contexts/c-1"),
        ("DELETE", "/api/v1/contexts/c-1"),
        ("GET", "/api/v1/contexts/c-1/history"),
        ("GET", f"/api/v1/contexts/c-1/diff/{UNKNOWN}"),
        ("POST", "/api/v1/contexts/c-1/share"),
        ("POST", "/api/v1/contexts/c-1/clone"),
    ],
)
async def test_a_malformed_context_id_is_422(
    client: httpx.AsyncClient, context_stub: FakeContextStub, method: str, path: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "context_id"
    assert context_stub.requests == []


@pytest.mark.parametrize(
    ("body", "request_type"),
    [
        (context_models.CreateContextBody, pb.CreateContextRequest),
        (context_models.UpdateContextBody, pb.UpdateContextRequest),
        (context_models.MergeBody, pb.MergeContextsRequest),
        (context_models.ShareBody, pb.ShareContextRequest),
        (context_models.CloneBody, pb.CloneContextRequest),
    ],
    ids=lambda item: item.__name__,
)
def test_every_body_field_exists_in_its_request_message(
    body: type[BaseModel], request_type: type[Message]
) -> None:
    assert set(body.model_fields) <= set(request_type.DESCRIPTOR.fields_by_name)
