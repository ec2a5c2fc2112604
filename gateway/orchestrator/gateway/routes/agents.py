"""`/api/v1/agents`: each route is JSON in → one AgentService call → JSON out."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query

from orchestrator.api.agent.v1 import agent_pb2 as pb
from orchestrator.gateway import codec
from orchestrator.gateway.errors import ERROR_RESPONSES
from orchestrator.gateway.resources import ClientsDep
from orchestrator.gateway.routes.agent_models import (
    AgentActionBody,
    AgentJson,
    AgentPageJson,
    AgentQuery,
    HeartbeatBody,
    HeartbeatJson,
    RegisterAgentBody,
    RouteBody,
    RouteJson,
    TaskResultBody,
)
from orchestrator.gateway.routes.common import (
    Json,
    call,
    call_with,
    documented,
    fields,
    page_json,
    page_request,
)

router = APIRouter(prefix="/api/v1/agents", tags=["agents"], responses=ERROR_RESPONSES)

AgentId = Annotated[UUID, Path(description="The agent's UUID")]

_AGENT = documented(AgentJson)


@router.post("", status_code=201, response_model=None, responses=documented(AgentJson, 201))
async def register_agent(body: RegisterAgentBody, clients: ClientsDep) -> Json:
    """Registers an agent (registering until its first heartbeat); 201 with the agent."""
    reply = await call_with(
        clients, clients.agent.RegisterAgent, pb.RegisterAgentRequest(), fields(body)
    )
    return codec.message_to_json(reply.agent)


@router.get("", response_model=None, responses=documented(AgentPageJson))
async def list_agents(query: Annotated[AgentQuery, Query()], clients: ClientsDep) -> Json:
    """Agents matching every filter given (repeat a filter to allow several values)."""
    request = codec.message_from_json(
        {
            "agent_types": query.agent_type,
            "capabilities": query.capability,
            "statuses": query.status,
            "tiers": query.tier,
            "page": page_request(query),
        },
        pb.ListAgentsRequest(),
    )
    reply = await call(clients, clients.agent.ListAgents, request)
    return page_json("agents", reply.agents, reply.page)


@router.post(
    "/route",
    summary="The best eligible agent for a task, with the score breakdown",
    response_model=None,
    responses=documented(RouteJson),
)
async def route_task(body: RouteBody, clients: ClientsDep) -> Json:
    """`{"agent", "score", "candidates"}`: the winner, its score's components, and every eligible
    agent best first. 409 (`failed_precondition`) when none is eligible; the message says why."""
    reply = await call_with(clients, clients.agent.RouteTask, pb.RouteTaskRequest(), fields(body))
    return codec.message_to_json(reply)


@router.get("/{agent_id}", response_model=None, responses=_AGENT)
async def get_agent(agent_id: AgentId, clients: ClientsDep) -> Json:
    request = pb.GetAgentRequest(agent_id=str(agent_id))
    reply = await call(clients, clients.agent.GetAgent, request)
    return codec.message_to_json(reply.agent)


@router.delete("/{agent_id}", response_model=None, responses=_AGENT)
async def deregister_agent(
    agent_id: AgentId,
    clients: ClientsDep,
    expected_version: int | None = None,
    actor: str | None = None,
    reason: str | None = None,
) -> Json:
    """Deregisters the agent (terminal); returns it as it now is."""
    body = AgentActionBody(expected_version=expected_version, actor=actor, reason=reason)
    request = pb.DeregisterAgentRequest(agent_id=str(agent_id))
    reply = await call_with(clients, clients.agent.DeregisterAgent, request, fields(body))
    return codec.message_to_json(reply.agent)


@router.post(
    "/{agent_id}/heartbeat",
    summary="Refreshes liveness and reports load",
    response_model=None,
    responses=documented(HeartbeatJson),
)
async def heartbeat(
    agent_id: AgentId, clients: ClientsDep, body: HeartbeatBody | None = None
) -> Json:
    """Returns the agent plus two top-level keys: `ttl_seconds` and `expires_at`, when the
    liveness runs out (send the next heartbeat well before)."""
    request = pb.HeartbeatRequest(agent_id=str(agent_id))
    reply = await call_with(clients, clients.agent.Heartbeat, request, fields(body))
    return {
        **codec.message_to_json(reply.agent),
        "ttl_seconds": reply.ttl_seconds,
        "expires_at": reply.expires_at.ToJsonString() if reply.HasField("expires_at") else None,
    }


@router.post(
    "/{agent_id}/drain",
    summary="idle|busy|offline → draining: keeps its tasks, gets no new ones",
    response_model=None,
    responses=_AGENT,
)
async def drain_agent(
    agent_id: AgentId, clients: ClientsDep, body: AgentActionBody | None = None
) -> Json:
    request = pb.DrainAgentRequest(agent_id=str(agent_id))
    reply = await call_with(clients, clients.agent.DrainAgent, request, fields(body))
    return codec.message_to_json(reply.agent)


@router.post(
    "/{agent_id}/results",
    summary="Folds one task outcome into the agent's track record and frees its slot",
    response_model=None,
    responses=_AGENT,
)
async def record_task_result(agent_id: AgentId, body: TaskResultBody, clients: ClientsDep) -> Json:
    """Returns the agent with its updated performance and load."""
    request = pb.RecordTaskResultRequest(agent_id=str(agent_id))
    reply = await call_with(clients, clients.agent.RecordTaskResult, request, fields(body))
    return codec.message_to_json(reply.agent)
