"""Choosing an agent for a task: a port, and its adapter over the agent service's RouteTask."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import grpc

from orchestrator.api.agent.v1 import agent_pb2, agent_pb2_grpc
from orchestrator.common.errors import FailedPrecondition, Unavailable
from orchestrator.task.domain import Task
from orchestrator.task.wire import enum_to_proto

ROUTE_TIMEOUT_SECONDS = 5.0

# The agent service's refusals that mean "no agent fits this task now", not "it is down".
_NO_AGENT_CODES = (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT)


class NoEligibleAgent(FailedPrecondition):
    """No agent can take the task now; the message says why. The task waits, READY."""


class Router(Protocol):
    async def route(self, task: Task) -> str:
        """The id of the agent to assign; raises NoEligibleAgent, or Unavailable when the
        routing service cannot be reached."""
        ...


class AgentServiceRouter:
    """Routes through AgentService.RouteTask, reserving the chosen agent's slot.

    Agents the task already failed on are excluded first; when that leaves none, the route is
    asked again without the exclusion (retrying on a known agent beats waiting forever).
    """

    def __init__(self, channel: grpc.aio.Channel, address: str) -> None:
        self._stub = agent_pb2_grpc.AgentServiceStub(channel)
        self._address = address

    async def route(self, task: Task) -> str:
        try:
            return await self._route(task, task.failed_agent_ids)
        except NoEligibleAgent:
            if not task.failed_agent_ids:
                raise
        return await self._route(task, ())

    async def _route(self, task: Task, excluded: Sequence[str]) -> str:
        request = agent_pb2.RouteTaskRequest(
            required_capabilities=[enum_to_proto(c) for c in task.required_capabilities],
            technologies=task.technologies,
            complexity=enum_to_proto(task.complexity),
            session_id=task.session_id,
            task_id=task.id,
            excluded_agent_ids=list(excluded),
            reserve=True,
            max_candidates=1,
        )
        try:
            reply = await self._stub.RouteTask(request, timeout=ROUTE_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _NO_AGENT_CODES:
                raise NoEligibleAgent(exc.details() or "no agent fits the task") from exc
            raise Unavailable(
                f"the agent service at {self._address} did not route task {task.id}: "
                f"{exc.code().name} {exc.details() or ''}".rstrip()
            ) from exc
        return str(reply.agent.id)
