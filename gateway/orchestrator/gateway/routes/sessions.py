"""`/api/v1/sessions`: each route is JSON in → one SessionService call → JSON out."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query
from grpc import aio
from pydantic import BaseModel

from orchestrator.api.session.v1 import session_pb2 as pb
from orchestrator.gateway import codec
from orchestrator.gateway.clients import ServiceClients
from orchestrator.gateway.errors import ERROR_RESPONSES
from orchestrator.gateway.resources import ClientsDep
from orchestrator.gateway.routes.common import (
    Json,
    PageQuery,
    Req,
    Resp,
    call,
    call_with,
    fields,
    page_json,
    page_request,
)
from orchestrator.gateway.routes.session_models import (
    BudgetBody,
    CheckpointAddedJson,
    CheckpointBody,
    CheckpointPageJson,
    CompleteBody,
    CreateSessionBody,
    FailBody,
    ReasonBody,
    RetriedSessionJson,
    SessionJson,
    SessionPageJson,
    SessionQuery,
    TransitionBody,
)

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"], responses=ERROR_RESPONSES)

SessionId = Annotated[UUID, Path(description="The session's UUID")]

_SESSION: dict[int | str, dict[str, Any]] = {200: {"model": SessionJson}}


async def _transition(
    clients: ServiceClients,
    rpc: aio.UnaryUnaryMultiCallable[Req, Resp],
    request: Req,
    session_id: UUID,
    body: BaseModel | None,
) -> Resp:
    return await call_with(clients, rpc, request, {**fields(body), "session_id": str(session_id)})


@router.post("", status_code=201, response_model=None, responses={201: {"model": SessionJson}})
async def create_session(body: CreateSessionBody, clients: ClientsDep) -> Json:
    """Creates a pending session; 201 with the session."""
    request = codec.message_from_json(fields(body), pb.CreateSessionRequest())
    reply = await call(clients, clients.session.CreateSession, request)
    return codec.message_to_json(reply.session)


@router.get("", response_model=None, responses={200: {"model": SessionPageJson}})
async def list_sessions(query: Annotated[SessionQuery, Query()], clients: ClientsDep) -> Json:
    """Sessions matching every filter given (repeat a filter to allow several values)."""
    request = codec.message_from_json(
        {
            "statuses": query.status,
            "session_types": query.session_type,
            "priorities": query.priority,
            "tags": query.tag,
            "parent_id": str(query.parent_id) if query.parent_id else None,
            "created_by": query.created_by,
            "page": page_request(query),
        },
        pb.ListSessionsRequest(),
    )
    reply = await call(clients, clients.session.ListSessions, request)
    return page_json("sessions", reply.sessions, reply.page)


@router.get("/{session_id}", response_model=None, responses=_SESSION)
async def get_session(session_id: SessionId, clients: ClientsDep) -> Json:
    request = pb.GetSessionRequest(session_id=str(session_id))
    reply = await call(clients, clients.session.GetSession, request)
    return codec.message_to_json(reply.session)


@router.delete("/{session_id}", response_model=None, responses=_SESSION)
async def delete_session(
    session_id: SessionId,
    clients: ClientsDep,
    expected_version: int | None = None,
    actor: str | None = None,
) -> Json:
    """Soft delete: the session leaves Get and List; returns it as it was deleted."""
    body = TransitionBody(expected_version=expected_version, actor=actor)
    reply = await _transition(
        clients, clients.session.DeleteSession, pb.DeleteSessionRequest(), session_id, body
    )
    return codec.message_to_json(reply.session)


@router.post(
    "/{session_id}/start",
    summary="pending|queued → running",
    response_model=None,
    responses=_SESSION,
)
async def start_session(
    session_id: SessionId, clients: ClientsDep, body: TransitionBody | None = None
) -> Json:
    reply = await _transition(
        clients, clients.session.StartSession, pb.StartSessionRequest(), session_id, body
    )
    return codec.message_to_json(reply.session)


@router.post(
    "/{session_id}/queue", summary="pending → queued", response_model=None, responses=_SESSION
)
async def queue_session(
    session_id: SessionId, clients: ClientsDep, body: TransitionBody | None = None
) -> Json:
    reply = await _transition(
        clients, clients.session.QueueSession, pb.QueueSessionRequest(), session_id, body
    )
    return codec.message_to_json(reply.session)


@router.post(
    "/{session_id}/pause", summary="running → paused", response_model=None, responses=_SESSION
)
async def pause_session(
    session_id: SessionId, clients: ClientsDep, body: ReasonBody | None = None
) -> Json:
    reply = await _transition(
        clients, clients.session.PauseSession, pb.PauseSessionRequest(), session_id, body
    )
    return codec.message_to_json(reply.session)


@router.post(
    "/{session_id}/resume",
    summary="paused|degraded → running",
    response_model=None,
    responses=_SESSION,
)
async def resume_session(
    session_id: SessionId, clients: ClientsDep, body: BudgetBody | None = None
) -> Json:
    """409 while a budget is spent, unless the body raises it past the session's usage."""
    reply = await _transition(
        clients, clients.session.ResumeSession, pb.ResumeSessionRequest(), session_id, body
    )
    return codec.message_to_json(reply.session)


@router.post(
    "/{session_id}/stop",
    summary="running|paused|degraded → stopped",
    response_model=None,
    responses=_SESSION,
)
async def stop_session(
    session_id: SessionId, clients: ClientsDep, body: ReasonBody | None = None
) -> Json:
    reply = await _transition(
        clients, clients.session.StopSession, pb.StopSessionRequest(), session_id, body
    )
    return codec.message_to_json(reply.session)


@router.post(
    "/{session_id}/cancel",
    summary="pending|queued|paused → cancelled",
    response_model=None,
    responses=_SESSION,
)
async def cancel_session(
    session_id: SessionId, clients: ClientsDep, body: ReasonBody | None = None
) -> Json:
    reply = await _transition(
        clients, clients.session.CancelSession, pb.CancelSessionRequest(), session_id, body
    )
    return codec.message_to_json(reply.session)


@router.post(
    "/{session_id}/degrade", summary="running → degraded", response_model=None, responses=_SESSION
)
async def degrade_session(
    session_id: SessionId, clients: ClientsDep, body: ReasonBody | None = None
) -> Json:
    reply = await _transition(
        clients, clients.session.DegradeSession, pb.DegradeSessionRequest(), session_id, body
    )
    return codec.message_to_json(reply.session)


@router.post(
    "/{session_id}/complete",
    summary="running|degraded → completed (or partially_completed with `partial`)",
    response_model=None,
    responses=_SESSION,
)
async def complete_session(
    session_id: SessionId, clients: ClientsDep, body: CompleteBody | None = None
) -> Json:
    reply = await _transition(
        clients, clients.session.CompleteSession, pb.CompleteSessionRequest(), session_id, body
    )
    return codec.message_to_json(reply.session)


@router.post(
    "/{session_id}/fail",
    summary="→ failed, from any state that allows it",
    response_model=None,
    responses=_SESSION,
)
async def fail_session(
    session_id: SessionId, clients: ClientsDep, body: FailBody | None = None
) -> Json:
    reply = await _transition(
        clients, clients.session.FailSession, pb.FailSessionRequest(), session_id, body
    )
    return codec.message_to_json(reply.session)


@router.post(
    "/{session_id}/retry",
    summary="failed|timeout → pending, while retries remain",
    response_model=None,
    responses={200: {"model": RetriedSessionJson}},
)
async def retry_session(
    session_id: SessionId, clients: ClientsDep, body: BudgetBody | None = None
) -> Json:
    """Returns the session, like every action, plus one extra top-level key: `resume_from`,
    the checkpoint the retry resumes from (null when the session has none). The body may raise
    the budgets, as for resume."""
    reply = await _transition(
        clients, clients.session.RetrySession, pb.RetrySessionRequest(), session_id, body
    )
    resumed = reply.HasField("resume_from")
    return {
        **codec.message_to_json(reply.session),
        "resume_from": codec.message_to_json(reply.resume_from) if resumed else None,
    }


@router.post(
    "/{session_id}/checkpoints",
    status_code=201,
    response_model=None,
    responses={201: {"model": CheckpointAddedJson}},
)
async def add_checkpoint(session_id: SessionId, body: CheckpointBody, clients: ClientsDep) -> Json:
    """Records a checkpoint; its sequence must exceed the latest one's (omit it for the next)."""
    reply = await _transition(
        clients, clients.session.AddCheckpoint, pb.AddCheckpointRequest(), session_id, body
    )
    return {
        "checkpoint": codec.message_to_json(reply.checkpoint),
        "session": codec.message_to_json(reply.session),
    }


@router.get(
    "/{session_id}/checkpoints",
    response_model=None,
    responses={200: {"model": CheckpointPageJson}},
)
async def list_checkpoints(
    session_id: SessionId, page: Annotated[PageQuery, Query()], clients: ClientsDep
) -> Json:
    """Checkpoints in sequence order."""
    request = pb.ListCheckpointsRequest(session_id=str(session_id))
    codec.message_from_json({"page": page_request(page)}, request)
    reply = await call(clients, clients.session.ListCheckpoints, request)
    return page_json("checkpoints", reply.checkpoints, reply.page)
