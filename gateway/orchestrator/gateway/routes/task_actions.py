"""`POST /api/v1/tasks/{id}/<action>`: one TaskService transition each; 200 with the task.

Lease-holding calls (start, complete, fail, renew-lease) carry the `fencing_token` the assign
returned; a stale token is 409 `failed_precondition`, a stale `expected_version` 409 `aborted`.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path
from grpc import aio
from pydantic import BaseModel

from orchestrator.api.task.v1 import task_pb2 as pb
from orchestrator.gateway import codec
from orchestrator.gateway.clients import ServiceClients
from orchestrator.gateway.errors import ERROR_RESPONSES
from orchestrator.gateway.resources import ClientsDep
from orchestrator.gateway.routes.common import Json, Req, Resp, call_with, documented, fields
from orchestrator.gateway.routes.task_models import (
    ApproveTaskBody,
    AssignTaskBody,
    CompleteTaskBody,
    FailedTaskJson,
    FailTaskBody,
    LeaseBody,
    RejectTaskBody,
    ReleaseTaskBody,
    RenewLeaseBody,
    TaskActionBody,
    TaskJson,
    TaskReasonBody,
)

router = APIRouter(prefix="/api/v1/tasks", tags=["task actions"], responses=ERROR_RESPONSES)

TaskId = Annotated[UUID, Path(description="The task's UUID")]

_TASK = documented(TaskJson)


async def _act(
    clients: ServiceClients,
    rpc: aio.UnaryUnaryMultiCallable[Req, Resp],
    request: Req,
    task_id: UUID,
    body: BaseModel | None,
) -> Resp:
    return await call_with(clients, rpc, request, {**fields(body), "task_id": str(task_id)})


@router.post(
    "/{task_id}/assign",
    summary="ready → assigned: a lease and a new fencing token (`task.fencing_token`)",
    response_model=None,
    responses=_TASK,
)
async def assign_task(
    task_id: TaskId, clients: ClientsDep, body: AssignTaskBody | None = None
) -> Json:
    """Without `agent_id` the agent service routes it; 409 when no agent fits (the task stays
    ready with the reason in `status_reason`)."""
    reply = await _act(clients, clients.task.AssignTask, pb.AssignTaskRequest(), task_id, body)
    return codec.message_to_json(reply.task)


@router.post(
    "/{task_id}/start", summary="assigned → in_progress", response_model=None, responses=_TASK
)
async def start_task(task_id: TaskId, body: LeaseBody, clients: ClientsDep) -> Json:
    reply = await _act(clients, clients.task.StartTask, pb.StartTaskRequest(), task_id, body)
    return codec.message_to_json(reply.task)


@router.post(
    "/{task_id}/complete",
    summary="in_progress → completed (or blocked, awaiting approval)",
    response_model=None,
    responses=_TASK,
)
async def complete_task(task_id: TaskId, body: CompleteTaskBody, clients: ClientsDep) -> Json:
    reply = await _act(clients, clients.task.CompleteTask, pb.CompleteTaskRequest(), task_id, body)
    return codec.message_to_json(reply.task)


@router.post(
    "/{task_id}/fail",
    summary="assigned|in_progress → ready (retry) or failed",
    response_model=None,
    responses=documented(FailedTaskJson),
)
async def fail_task(task_id: TaskId, body: FailTaskBody, clients: ClientsDep) -> Json:
    """Returns the task plus one top-level key, `will_retry`: it went back to ready and runs
    again at `next_attempt_at`."""
    reply = await _act(clients, clients.task.FailTask, pb.FailTaskRequest(), task_id, body)
    return {**codec.message_to_json(reply.task), "will_retry": reply.will_retry}


@router.post(
    "/{task_id}/renew-lease",
    summary="Extends the lease (`task.lease_expires_at`)",
    response_model=None,
    responses=_TASK,
)
async def renew_lease(task_id: TaskId, body: RenewLeaseBody, clients: ClientsDep) -> Json:
    reply = await _act(clients, clients.task.RenewLease, pb.RenewLeaseRequest(), task_id, body)
    return codec.message_to_json(reply.task)


@router.post(
    "/{task_id}/release",
    summary="assigned|in_progress → ready, without using an attempt",
    response_model=None,
    responses=_TASK,
)
async def release_task(
    task_id: TaskId, clients: ClientsDep, body: ReleaseTaskBody | None = None
) -> Json:
    reply = await _act(clients, clients.task.ReleaseTask, pb.ReleaseTaskRequest(), task_id, body)
    return codec.message_to_json(reply.task)


@router.post(
    "/{task_id}/block",
    summary="pending|ready|assigned|in_progress → blocked",
    response_model=None,
    responses=_TASK,
)
async def block_task(
    task_id: TaskId, clients: ClientsDep, body: TaskReasonBody | None = None
) -> Json:
    reply = await _act(clients, clients.task.BlockTask, pb.BlockTaskRequest(), task_id, body)
    return codec.message_to_json(reply.task)


@router.post(
    "/{task_id}/pause",
    summary="pending|ready|assigned|in_progress → paused",
    response_model=None,
    responses=_TASK,
)
async def pause_task(
    task_id: TaskId, clients: ClientsDep, body: TaskReasonBody | None = None
) -> Json:
    reply = await _act(clients, clients.task.PauseTask, pb.PauseTaskRequest(), task_id, body)
    return codec.message_to_json(reply.task)


@router.post(
    "/{task_id}/resume",
    summary="paused|blocked → pending or ready",
    response_model=None,
    responses=_TASK,
)
async def resume_task(
    task_id: TaskId, clients: ClientsDep, body: TaskActionBody | None = None
) -> Json:
    reply = await _act(clients, clients.task.ResumeTask, pb.ResumeTaskRequest(), task_id, body)
    return codec.message_to_json(reply.task)


@router.post(
    "/{task_id}/cancel",
    summary="Any non-terminal state → cancelled, with its descendants",
    response_model=None,
    responses=_TASK,
)
async def cancel_task(
    task_id: TaskId, clients: ClientsDep, body: TaskReasonBody | None = None
) -> Json:
    reply = await _act(clients, clients.task.CancelTask, pb.CancelTaskRequest(), task_id, body)
    return codec.message_to_json(reply.task)


@router.post(
    "/{task_id}/skip",
    summary="pending|ready|blocked|paused → skipped",
    response_model=None,
    responses=_TASK,
)
async def skip_task(
    task_id: TaskId, clients: ClientsDep, body: TaskReasonBody | None = None
) -> Json:
    reply = await _act(clients, clients.task.SkipTask, pb.SkipTaskRequest(), task_id, body)
    return codec.message_to_json(reply.task)


@router.post(
    "/{task_id}/approve",
    summary="blocked (awaiting approval) → completed",
    response_model=None,
    responses=_TASK,
)
async def approve_task(
    task_id: TaskId, clients: ClientsDep, body: ApproveTaskBody | None = None
) -> Json:
    reply = await _act(clients, clients.task.ApproveTask, pb.ApproveTaskRequest(), task_id, body)
    return codec.message_to_json(reply.task)


@router.post(
    "/{task_id}/reject",
    summary="blocked (awaiting approval) → ready, the comment added to its prompt",
    response_model=None,
    responses=_TASK,
)
async def reject_task(task_id: TaskId, body: RejectTaskBody, clients: ClientsDep) -> Json:
    reply = await _act(clients, clients.task.RejectTask, pb.RejectTaskRequest(), task_id, body)
    return codec.message_to_json(reply.task)
