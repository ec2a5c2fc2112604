"""`POST /api/v1/tasks/{id}/<action>` against a fake TaskService: each maps to its RPC."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import httpx
import pytest
from google.protobuf.message import Message
from pydantic import BaseModel

from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.task.v1 import task_pb2 as pb
from orchestrator.gateway.routes import task_models
from tests.unit.gateway.samples import create_task

if TYPE_CHECKING:
    from tests.unit.gateway.conftest import RpcErrorFactory
    from tests.unit.gateway.fake_task_service import FakeTaskStub

pytestmark = pytest.mark.timeout(30)

AGENT = "9d6b3f0e-2a71-4c55-8e0f-6b1a2c3d4e5f"
LEASE = {"fencing_token": 1}

# action path → (request type, a body that passes, status after)
ACTIONS: dict[str, tuple[type[Message], dict[str, Any] | None, str | None]] = {
    "assign": (pb.AssignTaskRequest, {"agent_id": AGENT, "lease_seconds": 60}, "assigned"),
    "start": (pb.StartTaskRequest, LEASE, "in_progress"),
    "complete": (pb.CompleteTaskRequest, {**LEASE, "result": {"ok": True}}, "completed"),
    "fail": (pb.FailTaskRequest, {**LEASE, "error": "boom", "retryable": True}, "failed"),
    "renew-lease": (pb.RenewLeaseRequest, {**LEASE, "lease_seconds": 30}, None),
    "release": (pb.ReleaseTaskRequest, None, "ready"),
    "block": (pb.BlockTaskRequest, {"reason": "waiting on infra"}, "blocked"),
    "pause": (pb.PauseTaskRequest, None, "paused"),
    "resume": (pb.ResumeTaskRequest, None, "ready"),
    "cancel": (pb.CancelTaskRequest, {"reason": "obsolete"}, "cancelled"),
    "skip": (pb.SkipTaskRequest, None, "skipped"),
    "approve": (pb.ApproveTaskRequest, {"comment": "lgtm"}, "completed"),
    "reject": (pb.RejectTaskRequest, {"comment": "add tests"}, "ready"),
}


@pytest.mark.parametrize("action", ACTIONS)
async def test_each_action_calls_its_rpc_and_returns_the_updated_task(
    client: httpx.AsyncClient, task_stub: FakeTaskStub, action: str
) -> None:
    request_type, body, status = ACTIONS[action]
    task = await create_task(client)
    response = await client.post(f"/api/v1/tasks/{task['id']}/{action}", json=body)
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["id"] == task["id"]
    assert updated["status"] == (status or task["status"])
    request = task_stub.last
    assert isinstance(request, request_type)
    assert request.task_id == task["id"]  # type: ignore[attr-defined]


async def test_assign_passes_the_agent_and_the_task_carries_the_token(
    client: httpx.AsyncClient, task_stub: FakeTaskStub
) -> None:
    task = await create_task(client)
    response = await client.post(
        f"/api/v1/tasks/{task['id']}/assign", json={"agent_id": AGENT, "expected_version": 1}
    )
    assert (response.json()["assigned_agent_id"], response.json()["fencing_token"]) == (AGENT, 1)
    request = task_stub.last
    assert isinstance(request, pb.AssignTaskRequest)
    assert (request.agent_id, request.expected_version) == (AGENT, 1)


async def test_assign_without_a_body_routes(
    client: httpx.AsyncClient, task_stub: FakeTaskStub
) -> None:
    task = await create_task(client)
    response = await client.post(f"/api/v1/tasks/{task['id']}/assign")
    assert response.status_code == 200
    assert task_stub.last.agent_id == ""
    assert not task_stub.last.HasField("expected_version")


async def test_assign_with_no_fitting_agent_is_409(
    client: httpx.AsyncClient, task_stub: FakeTaskStub, make_rpc_error: RpcErrorFactory
) -> None:
    task = await create_task(client)
    task_stub.fail_with = make_rpc_error(
        grpc.StatusCode.FAILED_PRECONDITION, "no agent holds REFACTORING"
    )
    response = await client.post(f"/api/v1/tasks/{task['id']}/assign")
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "failed_precondition",
        "message": "no agent holds REFACTORING",
        "field": None,
    }


async def test_fail_returns_the_task_with_will_retry(
    client: httpx.AsyncClient, task_stub: FakeTaskStub
) -> None:
    task = await create_task(client)
    response = await client.post(
        f"/api/v1/tasks/{task['id']}/fail",
        json={
            "fencing_token": 2,
            "error": "tests red",
            "retryable": True,
            "usage": {"cost_usd": 1},
        },
    )
    assert response.json()["will_retry"] is True
    request = task_stub.last
    assert isinstance(request, pb.FailTaskRequest)
    assert (request.fencing_token, request.error, request.usage.cost_usd) == (2, "tests red", 1.0)


async def test_complete_passes_result_usage_changes_and_quality(
    client: httpx.AsyncClient, task_stub: FakeTaskStub
) -> None:
    task = await create_task(client)
    body = {
        "fencing_token": 4,
        "result": {"files": 3},
        "usage": {"input_tokens": 1200, "output_tokens": 300},
        "changes": {"branch": "task/1", "changed_files": ["billing.py"]},
        "quality_score": 0.8,
    }
    response = await client.post(f"/api/v1/tasks/{task['id']}/complete", json=body)
    assert response.status_code == 200
    request = task_stub.last
    assert isinstance(request, pb.CompleteTaskRequest)
    assert request.usage.input_tokens == 1200
    assert list(request.changes.changed_files) == ["billing.py"]
    assert request.HasField("quality_score")


@pytest.mark.parametrize("action", ["start", "complete", "fail", "renew-lease"])
async def test_lease_calls_need_the_fencing_token(
    client: httpx.AsyncClient, task_stub: FakeTaskStub, action: str
) -> None:
    task = await create_task(client)
    response = await client.post(f"/api/v1/tasks/{task['id']}/{action}", json={})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "fencing_token"


async def test_reject_needs_a_comment(client: httpx.AsyncClient) -> None:
    task = await create_task(client)
    response = await client.post(f"/api/v1/tasks/{task['id']}/reject", json={})
    assert (response.status_code, response.json()["error"]["field"]) == (422, "comment")


async def test_a_misspelt_action_field_is_refused(client: httpx.AsyncClient) -> None:
    task = await create_task(client)
    response = await client.post(f"/api/v1/tasks/{task['id']}/block", json={"raeson": "x"})
    assert (response.status_code, response.json()["error"]["field"]) == (422, "raeson")


@pytest.mark.parametrize("action", ACTIONS)
async def test_a_malformed_task_id_is_422_for_every_action(
    client: httpx.AsyncClient, task_stub: FakeTaskStub, action: str
) -> None:
    response = await client.post(f"/api/v1/tasks/t-1/{action}", json=ACTIONS[action][1])
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "task_id"
    assert task_stub.requests == []


async def test_an_unknown_task_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/api/v1/tasks/{AGENT}/pause")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


async def test_a_stale_version_or_token_is_409(
    client: httpx.AsyncClient, task_stub: FakeTaskStub, make_rpc_error: RpcErrorFactory
) -> None:
    task = await create_task(client)
    task_stub.fail_with = make_rpc_error(
        grpc.StatusCode.ABORTED, "task is at version 3, not 1", error_code="aborted"
    )
    stale = await client.post(f"/api/v1/tasks/{task['id']}/pause", json={"expected_version": 1})
    assert (stale.status_code, stale.json()["error"]["code"]) == (409, "aborted")
    task_stub.fail_with = make_rpc_error(
        grpc.StatusCode.FAILED_PRECONDITION, "lease lost", error_code="stale_fencing_token"
    )
    lost = await client.post(f"/api/v1/tasks/{task['id']}/start", json={"fencing_token": 1})
    assert (lost.status_code, lost.json()["error"]["code"]) == (409, "stale_fencing_token")


@pytest.mark.parametrize(
    ("body", "request_type"),
    [
        (task_models.AssignTaskBody, pb.AssignTaskRequest),
        (task_models.LeaseBody, pb.StartTaskRequest),
        (task_models.CompleteTaskBody, pb.CompleteTaskRequest),
        (task_models.FailTaskBody, pb.FailTaskRequest),
        (task_models.RenewLeaseBody, pb.RenewLeaseRequest),
        (task_models.ReleaseTaskBody, pb.ReleaseTaskRequest),
        (task_models.TaskReasonBody, pb.BlockTaskRequest),
        (task_models.TaskReasonBody, pb.PauseTaskRequest),
        (task_models.TaskActionBody, pb.ResumeTaskRequest),
        (task_models.TaskReasonBody, pb.CancelTaskRequest),
        (task_models.TaskReasonBody, pb.SkipTaskRequest),
        (task_models.ApproveTaskBody, pb.ApproveTaskRequest),
        (task_models.RejectTaskBody, pb.RejectTaskRequest),
        (task_models.UsageBody, common_pb2.Usage),
        (task_models.WorkspaceChangesBody, pb.WorkspaceChanges),
    ],
    ids=lambda item: item.__name__,
)
def test_every_body_field_exists_in_its_request_message(
    body: type[BaseModel], request_type: type[Message]
) -> None:
    assert set(body.model_fields) <= set(request_type.DESCRIPTOR.fields_by_name)
