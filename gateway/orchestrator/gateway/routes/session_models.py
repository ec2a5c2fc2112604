"""Request bodies and query models of the session routes, and the response shapes /docs shows.

Request fields carry the proto field names; the codec maps them onto the request messages, so a
field added here must exist in session.proto. Range rules (title length, durations) are the
service's: the gateway only checks types, so there is one source of truth for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import Field, create_model

from orchestrator.api.session.v1 import session_pb2 as pb
from orchestrator.gateway.routes.common import PageQuery, StrictBody, page_model
from orchestrator.gateway.schema import enum_literal, message_model

if TYPE_CHECKING:
    SessionStatusName = str
    SessionTypeName = str
    SessionPriorityName = str
    PermissionPolicyName = str
else:
    SessionStatusName = enum_literal(pb.SessionStatus.DESCRIPTOR)
    SessionTypeName = enum_literal(pb.SessionType.DESCRIPTOR)
    SessionPriorityName = enum_literal(pb.SessionPriority.DESCRIPTOR)
    PermissionPolicyName = enum_literal(pb.PermissionPolicy.DESCRIPTOR)

_VERSION = "Refused with 409 (`aborted`) unless the session is at this version."


class SessionLimitsBody(StrictBody):
    max_parallel_tasks: int | None = None
    token_budget: int | None = None
    cost_budget_usd: float | None = None
    max_retries: int | None = Field(None, description="Retries allowed after failure (default 3)")


class CreateSessionBody(StrictBody):
    title: str = Field(description="1 to 200 characters; `IND-…` naming is suggested")
    initial_prompt: str = Field(description="1 to 10,000 characters")
    description: str | None = None
    session_type: SessionTypeName | None = None
    priority: SessionPriorityName | None = None
    parent_id: UUID | None = None
    agent_config: dict[str, str] | None = None
    model_identifier: str | None = Field(None, description="`provider/model`")
    max_duration_seconds: int | None = Field(None, description="60 to 86,400; default 3,600")
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    created_by: str | None = None
    limits: SessionLimitsBody | None = None
    permission_policy: PermissionPolicyName | None = None
    workspace: str | None = Field(None, description="A git repository the tasks work in")
    session_id: UUID | None = Field(
        None, description="Client-chosen id: repeating the same create returns the same session"
    )


class SessionQuery(PageQuery):
    status: list[SessionStatusName] = Field(default_factory=list, description="Any of these")
    session_type: list[SessionTypeName] = Field(default_factory=list)
    priority: list[SessionPriorityName] = Field(default_factory=list)
    tag: list[str] = Field(default_factory=list, description="Sessions carrying every one")
    parent_id: UUID | None = None
    created_by: str | None = None


class TransitionBody(StrictBody):
    expected_version: int | None = Field(None, description=_VERSION)
    actor: str | None = Field(None, description="Who asks, recorded with the change")


class ReasonBody(TransitionBody):
    reason: str | None = None


class BudgetBody(TransitionBody):
    """A resume or retry may raise the budgets in the same call (a session paused for a spent
    budget goes on only with one raised past its usage)."""

    token_budget: int | None = Field(None, ge=0, description="New token budget; 0 = unlimited")
    cost_budget_usd: float | None = Field(
        None, ge=0, description="New cost budget in USD; 0 = unlimited"
    )


class FailBody(TransitionBody):
    error: str | None = None


class CompleteBody(TransitionBody):
    result: dict[str, Any] | None = None
    partial: bool | None = Field(None, description="partially_completed instead of completed")


class CheckpointBody(StrictBody):
    data: dict[str, Any]
    created_by: str | None = None
    sequence: int | None = Field(None, description="Omit for the next; else above the latest")
    expected_version: int | None = Field(None, description=_VERSION)


# Response shapes: documentation only, the routes return the codec's JSON unvalidated.
SessionJson = message_model(pb.Session.DESCRIPTOR)
CheckpointJson = message_model(pb.Checkpoint.DESCRIPTOR)
SessionPageJson = page_model("SessionPage", "sessions", SessionJson)
CheckpointPageJson = page_model("CheckpointPage", "checkpoints", CheckpointJson)
CheckpointAddedJson = create_model(
    "CheckpointAdded", checkpoint=(CheckpointJson, ...), session=(SessionJson, ...)
)
RetriedSessionJson = create_model(
    "RetriedSession",
    __base__=SessionJson,
    resume_from=(CheckpointJson | None, ...),  # type: ignore[arg-type]
)
