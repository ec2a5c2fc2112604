"""AgentService over gRPC: proto in, use case, proto out. Errors map in the interceptor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
from nats.aio.client import Client as NATS

from orchestrator.agent.domain import (
    AgentStatus,
    AgentType,
    Capability,
    ExecutorKind,
    PerformanceTier,
    SessionType,
    TaskComplexity,
    TaskNeeds,
    TaskOutcome,
)
from orchestrator.agent.domain.validation import parse_uuid, validate_technologies
from orchestrator.agent.repository import AgentFilter
from orchestrator.agent.router import Router
from orchestrator.agent.service import AgentService, ResultReport
from orchestrator.agent.watch import watch_agents
from orchestrator.agent.wire import (
    agent_to_proto,
    candidate_to_proto,
    enum_from_proto,
    enum_list,
    required_enum,
    score_to_proto,
)
from orchestrator.api.agent.v1 import agent_pb2 as pb
from orchestrator.api.agent.v1 import agent_pb2_grpc
from orchestrator.api.common.v1 import common_pb2
from orchestrator.common.errors import InvalidArgument
from orchestrator.common.protoconv import from_struct, timestamp

if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[Any, Any]


def _expected(request: Any) -> int | None:
    return int(request.expected_version) if request.HasField("expected_version") else None


def _values(kind: Any, numbers: Any, field: str) -> tuple[str, ...]:
    return tuple(v.value for v in enum_list(kind, numbers, field))


def _executor(r: pb.RegisterAgentRequest) -> ExecutorKind:
    """Unspecified: an endpoint means an OpenCode server, none means a shell."""
    kind = enum_from_proto(ExecutorKind, r.executor_kind, "executor_kind")
    if kind is not None:
        return kind
    return ExecutorKind.OPENCODE if r.executor_endpoint else ExecutorKind.SHELL


def task_needs(r: pb.RouteTaskRequest) -> TaskNeeds:
    return TaskNeeds(
        capabilities=frozenset(
            enum_list(Capability, r.required_capabilities, "required_capabilities")
        ),
        technologies=frozenset(validate_technologies(r.technologies, "technologies")),
        session_type=enum_from_proto(SessionType, r.session_type, "session_type"),
        complexity=enum_from_proto(TaskComplexity, r.complexity, "complexity"),
        excluded=frozenset(parse_uuid(i, "excluded_agent_ids") for i in r.excluded_agent_ids),
    )


class AgentServicer(agent_pb2_grpc.AgentServiceServicer):
    def __init__(self, service: AgentService, router: Router, nc: NATS) -> None:
        self._service = service
        self._router = router
        self._nc = nc

    async def RegisterAgent(self, request: pb.RegisterAgentRequest, context: Context) -> Any:
        r = request
        agent = await self._service.register(
            agent_id=r.agent_id or None,
            name=r.name,
            agent_type=required_enum(AgentType, r.agent_type, "agent_type"),
            primary_capabilities=enum_list(
                Capability, r.primary_capabilities, "primary_capabilities"
            ),
            secondary_capabilities=enum_list(
                Capability, r.secondary_capabilities, "secondary_capabilities"
            ),
            preferred_technologies=list(r.preferred_technologies),
            preferred_session_types=enum_list(
                SessionType, r.preferred_session_types, "preferred_session_types"
            ),
            complexity_preference=enum_from_proto(
                TaskComplexity, r.complexity_preference, "complexity_preference"
            ),
            executor_kind=_executor(r),
            executor_endpoint=r.executor_endpoint,
            model_identifier=r.model_identifier,
            max_concurrent_tasks=r.max_concurrent_tasks,
            metadata=from_struct(r.metadata),
            registered_by=r.actor,
        )
        return pb.RegisterAgentResponse(agent=agent_to_proto(agent))

    async def DeregisterAgent(self, request: pb.DeregisterAgentRequest, context: Context) -> Any:
        r = request
        agent = await self._service.deregister(r.agent_id, _expected(r), r.reason, r.actor)
        return pb.DeregisterAgentResponse(agent=agent_to_proto(agent))

    async def DrainAgent(self, request: pb.DrainAgentRequest, context: Context) -> Any:
        r = request
        agent = await self._service.drain(r.agent_id, _expected(r), r.reason, r.actor)
        return pb.DrainAgentResponse(agent=agent_to_proto(agent))

    async def Heartbeat(self, request: pb.HeartbeatRequest, context: Context) -> Any:
        r = request
        beat = await self._service.heartbeat(
            r.agent_id,
            _expected(r),
            list(r.current_task_ids),
            enum_from_proto(AgentStatus, r.status, "status"),
        )
        return pb.HeartbeatResponse(
            agent=agent_to_proto(beat.agent),
            ttl_seconds=beat.ttl_seconds,
            expires_at=timestamp(beat.expires_at),
        )

    async def GetAgent(self, request: pb.GetAgentRequest, context: Context) -> Any:
        r = request
        if bool(r.agent_id) == bool(r.name):
            raise InvalidArgument("give exactly one of agent_id and name", field="agent_id")
        if r.agent_id:
            agent = await self._service.get(r.agent_id)
        else:
            agent = await self._service.get_by_name(r.name)
        return pb.GetAgentResponse(agent=agent_to_proto(agent))

    async def ListAgents(self, request: pb.ListAgentsRequest, context: Context) -> Any:
        r = request
        f = AgentFilter(
            agent_types=_values(AgentType, r.agent_types, "agent_types"),
            capabilities=_values(Capability, r.capabilities, "capabilities"),
            statuses=_values(AgentStatus, r.statuses, "statuses"),
            tiers=_values(PerformanceTier, r.tiers, "tiers"),
        )
        page = await self._service.list_agents(f, r.page.page_size, r.page.page_token)
        return pb.ListAgentsResponse(
            agents=[agent_to_proto(a) for a in page.items],
            page=common_pb2.PageResponse(next_page_token=page.next_token, total_size=page.total),
        )

    async def RouteTask(self, request: pb.RouteTaskRequest, context: Context) -> Any:
        r = request
        route = await self._router.route(
            task_needs(r),
            task_id=r.task_id,
            reserve=r.reserve,
            max_candidates=r.max_candidates,
            ignore_load=r.ignore_load,
        )
        return pb.RouteTaskResponse(
            agent=agent_to_proto(route.agent),
            score=score_to_proto(route.score),
            candidates=[candidate_to_proto(c) for c in route.candidates],
        )

    async def RecordTaskResult(self, request: pb.RecordTaskResultRequest, context: Context) -> Any:
        r = request
        report = ResultReport(
            task_id=r.task_id,
            fencing_token=r.fencing_token,
            outcome=required_enum(TaskOutcome, r.outcome, "outcome"),
            duration_seconds=r.duration_seconds,
            quality_score=r.quality_score if r.HasField("quality_score") else None,
            actor=r.actor,
        )
        agent = await self._service.record_result(r.agent_id, _expected(r), report)
        return pb.RecordTaskResultResponse(agent=agent_to_proto(agent))

    async def WatchAgents(
        self, request: pb.WatchAgentsRequest, context: Context
    ) -> AsyncIterator[pb.WatchAgentsResponse]:
        r = request
        f = AgentFilter(
            ids=tuple(parse_uuid(i, "agent_ids") for i in r.agent_ids),
            agent_types=_values(AgentType, r.agent_types, "agent_types"),
            statuses=_values(AgentStatus, r.statuses, "statuses"),
        )
        async for reply in watch_agents(self._service, self._nc, f):
            yield reply
