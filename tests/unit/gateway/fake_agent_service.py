"""An in-memory AgentService stub: enough behaviour for the gateway's agent routes."""

from __future__ import annotations

from uuid import uuid4

import grpc

from orchestrator.api.agent.v1 import agent_pb2 as pb
from orchestrator.api.common.v1 import common_pb2, taxonomy_pb2
from tests.unit.gateway.fakes import RecordingStub, not_found, rpc_error

HEARTBEAT_TTL_SECONDS = 30


class FakeAgentStub(RecordingStub):
    def __init__(self) -> None:
        super().__init__()
        self.agents: dict[str, pb.Agent] = {}

    def _agent(self, agent_id: str) -> pb.Agent:
        if agent_id not in self.agents:
            raise not_found("agent", agent_id)
        return self.agents[agent_id]

    def _move(self, agent_id: str, status: pb.AgentStatus.ValueType) -> pb.Agent:
        agent = self._agent(agent_id)
        agent.status = status
        agent.version += 1
        return agent

    async def RegisterAgent(
        self, request: pb.RegisterAgentRequest, timeout: float | None = None
    ) -> pb.RegisterAgentResponse:
        self._record(request)
        agent = pb.Agent(
            id=request.agent_id or str(uuid4()),
            name=request.name,
            agent_type=request.agent_type,
            primary_capabilities=request.primary_capabilities,
            secondary_capabilities=request.secondary_capabilities,
            preferred_technologies=request.preferred_technologies,
            executor_kind=request.executor_kind,
            max_concurrent_tasks=request.max_concurrent_tasks or 1,
            status=pb.AGENT_STATUS_REGISTERING,
            performance=pb.PerformanceMetrics(tier=pb.PERFORMANCE_TIER_COMPETENT),
            metadata=request.metadata,
            version=1,
        )
        agent.created_at.FromJsonString("2025-03-01T12:00:00Z")
        self.agents[agent.id] = agent
        return pb.RegisterAgentResponse(agent=agent)

    async def GetAgent(
        self, request: pb.GetAgentRequest, timeout: float | None = None
    ) -> pb.GetAgentResponse:
        self._record(request)
        return pb.GetAgentResponse(agent=self._agent(request.agent_id))

    async def ListAgents(
        self, request: pb.ListAgentsRequest, timeout: float | None = None
    ) -> pb.ListAgentsResponse:
        self._record(request)
        agents = list(self.agents.values())
        page = common_pb2.PageResponse(next_page_token="more", total_size=len(agents))
        return pb.ListAgentsResponse(agents=agents, page=page)

    async def DeregisterAgent(
        self, request: pb.DeregisterAgentRequest, timeout: float | None = None
    ) -> pb.DeregisterAgentResponse:
        self._record(request)
        agent = self._move(request.agent_id, pb.AGENT_STATUS_DEREGISTERED)
        return pb.DeregisterAgentResponse(agent=agent)

    async def DrainAgent(
        self, request: pb.DrainAgentRequest, timeout: float | None = None
    ) -> pb.DrainAgentResponse:
        self._record(request)
        return pb.DrainAgentResponse(agent=self._move(request.agent_id, pb.AGENT_STATUS_DRAINING))

    async def Heartbeat(
        self, request: pb.HeartbeatRequest, timeout: float | None = None
    ) -> pb.HeartbeatResponse:
        self._record(request)
        agent = self._agent(request.agent_id)
        agent.status = pb.AGENT_STATUS_BUSY if request.current_task_ids else pb.AGENT_STATUS_IDLE
        agent.load.current_task_ids[:] = request.current_task_ids
        agent.load.current_tasks = len(request.current_task_ids)
        reply = pb.HeartbeatResponse(agent=agent, ttl_seconds=HEARTBEAT_TTL_SECONDS)
        reply.expires_at.FromJsonString("2025-03-01T12:00:30Z")
        return reply

    async def RouteTask(
        self, request: pb.RouteTaskRequest, timeout: float | None = None
    ) -> pb.RouteTaskResponse:
        self._record(request)
        needed = set(request.required_capabilities)
        fits = [
            agent
            for agent in sorted(self.agents.values(), key=lambda agent: agent.name)
            if needed <= {*agent.primary_capabilities, *agent.secondary_capabilities}
            and agent.id not in request.excluded_agent_ids
        ]
        if not fits:
            names = ", ".join(taxonomy_pb2.Capability.Name(c) for c in sorted(needed))
            raise rpc_error(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"no agent holds {names}",
                error_code="no_eligible_agent",
            )
        score = pb.RouteScore(capability_fit=1.0, success_rate=0.5, tier_multiplier=1.0, total=0.4)
        candidates = [
            pb.RouteCandidate(agent_id=agent.id, agent_name=agent.name, score=score)
            for agent in fits
        ]
        return pb.RouteTaskResponse(agent=fits[0], score=score, candidates=candidates)

    async def RecordTaskResult(
        self, request: pb.RecordTaskResultRequest, timeout: float | None = None
    ) -> pb.RecordTaskResultResponse:
        self._record(request)
        agent = self._agent(request.agent_id)
        if request.outcome == pb.TASK_OUTCOME_COMPLETED:
            agent.performance.tasks_completed += 1
        else:
            agent.performance.tasks_failed += 1
        return pb.RecordTaskResultResponse(agent=agent)
