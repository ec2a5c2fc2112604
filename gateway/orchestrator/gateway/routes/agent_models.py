"""Request bodies and queries of the agent routes, and the response shapes /docs shows.

Field names are agent.proto's; the codec maps them onto the request messages. The gateway checks
types and enum names only: name patterns, capacities and ranges are the agent service's rules.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import Field, create_model

from orchestrator.api.agent.v1 import agent_pb2 as pb
from orchestrator.api.session.v1 import session_pb2
from orchestrator.gateway.routes.common import (
    ACTOR,
    CapabilityName,
    ComplexityName,
    PageQuery,
    StrictBody,
    page_model,
)
from orchestrator.gateway.schema import enum_literal, message_model

if TYPE_CHECKING:
    AgentTypeName = str
    AgentStatusName = str
    TierName = str
    ExecutorKindName = str
    OutcomeName = str
    SessionTypeName = str
else:
    AgentTypeName = enum_literal(pb.AgentType.DESCRIPTOR)
    AgentStatusName = enum_literal(pb.AgentStatus.DESCRIPTOR)
    TierName = enum_literal(pb.PerformanceTier.DESCRIPTOR)
    ExecutorKindName = enum_literal(pb.ExecutorKind.DESCRIPTOR)
    OutcomeName = enum_literal(pb.TaskOutcome.DESCRIPTOR)
    SessionTypeName = enum_literal(session_pb2.SessionType.DESCRIPTOR)

_VERSION = "Refused with 409 (`aborted`) unless the agent is at this version."


class RegisterAgentBody(StrictBody):
    name: str = Field(description="`AGENT-[A-Z0-9-]+`, unique among live agents")
    agent_type: AgentTypeName
    primary_capabilities: list[CapabilityName] = Field(description="At least one")
    secondary_capabilities: list[CapabilityName] | None = None
    preferred_technologies: list[str] | None = None
    preferred_session_types: list[SessionTypeName] | None = None
    complexity_preference: ComplexityName | None = None
    executor_kind: ExecutorKindName | None = None
    executor_endpoint: str | None = Field(None, description="E.g. the OpenCode server URL")
    model_identifier: str | None = Field(None, description="`provider/model`")
    max_concurrent_tasks: int | None = Field(None, description="Default 1")
    metadata: dict[str, Any] | None = None
    actor: str | None = Field(None, description=ACTOR)
    agent_id: UUID | None = Field(
        None, description="Client-chosen id: repeating the same register returns the same agent"
    )


class AgentQuery(PageQuery):
    agent_type: list[AgentTypeName] = Field(default_factory=list, description="Any of these")
    capability: list[CapabilityName] = Field(
        default_factory=list, description="Agents holding every one (primary or secondary)"
    )
    status: list[AgentStatusName] = Field(
        default_factory=list, description="Any of these; none = all but deregistered"
    )
    tier: list[TierName] = Field(default_factory=list, description="Any of these")


class AgentActionBody(StrictBody):
    expected_version: int | None = Field(None, description=_VERSION)
    actor: str | None = Field(None, description=ACTOR)
    reason: str | None = None


class HeartbeatBody(StrictBody):
    expected_version: int | None = Field(None, description="Usually omitted")
    current_task_ids: list[UUID] | None = Field(
        None, description="The tasks the worker runs now: the agent's load"
    )
    status: AgentStatusName | None = Field(
        None, description="`idle` or `busy` as the worker sees itself; omit to derive from load"
    )


class RouteBody(StrictBody):
    required_capabilities: list[CapabilityName] = Field(
        description="An eligible agent holds every one"
    )
    technologies: list[str] | None = None
    session_type: SessionTypeName | None = None
    complexity: ComplexityName | None = None
    session_id: UUID | None = None
    task_id: UUID | None = None
    excluded_agent_ids: list[UUID] | None = None
    reserve: bool | None = Field(None, description="Count task_id against the winner's load now")
    max_candidates: int | None = Field(None, description="0 or omitted = every eligible agent")


class TaskResultBody(StrictBody):
    task_id: UUID
    outcome: OutcomeName
    fencing_token: int | None = Field(None, description="With task_id, makes the call idempotent")
    duration_seconds: float | None = None
    quality_score: float | None = Field(None, description="0..1; omit when nobody judged it")
    expected_version: int | None = Field(None, description=_VERSION)
    actor: str | None = Field(None, description=ACTOR)


# Response shapes: documentation only, the routes return the codec's JSON unvalidated.
AgentJson = message_model(pb.Agent.DESCRIPTOR)
AgentPageJson = page_model("AgentPage", "agents", AgentJson)
RouteJson = message_model(pb.RouteTaskResponse.DESCRIPTOR)
HeartbeatJson = create_model(
    "HeartbeatReply",
    __base__=AgentJson,
    ttl_seconds=(int, ...),
    expires_at=(datetime | None, ...),
)
