"""The worker's side of the agent service: registration, heartbeats and drain."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import grpc
from google.protobuf import struct_pb2

from orchestrator.api.agent.v1 import agent_pb2
from orchestrator.worker.config import WorkerConfig

if TYPE_CHECKING:
    from orchestrator.api.agent.v1.agent_pb2_grpc import AgentServiceAsyncStub

log = logging.getLogger(__name__)

RPC_TIMEOUT_SECONDS = 10.0
# Used until the first heartbeat reply says the real TTL.
FALLBACK_TTL_SECONDS = 10
# Heartbeats that report a changed load come at most this often.
BEAT_GAP_SECONDS = 1.0
# Statuses in which the service will route nothing more to this agent.
GONE = (agent_pb2.AGENT_STATUS_DRAINING, agent_pb2.AGENT_STATUS_DEREGISTERED)


class AgentLink:
    def __init__(self, stub: AgentServiceAsyncStub, config: WorkerConfig) -> None:
        self._stub = stub
        self._config = config
        self.ttl_seconds = FALLBACK_TTL_SECONDS
        self.draining = False

    def registration(self) -> agent_pb2.RegisterAgentRequest:
        metadata = struct_pb2.Struct()
        metadata.update(self._config.metadata)
        return agent_pb2.RegisterAgentRequest(
            agent_id=self._config.agent_id,
            name=self._config.name,
            agent_type=self._config.agent_type,  # type: ignore[arg-type]
            primary_capabilities=self._config.capabilities,  # type: ignore[arg-type]
            executor_kind=self._config.executor_kind,  # type: ignore[arg-type]
            executor_endpoint=self._config.executor_endpoint,
            max_concurrent_tasks=self._config.max_tasks,
            metadata=metadata,
            actor=self._config.name,
        )

    async def register(self) -> agent_pb2.Agent:
        """Idempotent for the same id and body: a restarted worker gets its agent back."""
        reply = await self._stub.RegisterAgent(self.registration(), timeout=RPC_TIMEOUT_SECONDS)
        agent = reply.agent
        if agent.status == agent_pb2.AGENT_STATUS_DRAINING:
            # Restarted soon after its own drain: heartbeats cannot revive a DRAINING agent, so
            # stay silent until the service marks it OFFLINE, from which a heartbeat does.
            log.warning("agent %s is still DRAINING; waiting for it to go OFFLINE", agent.name)
            await self._await_offline()
        return agent

    async def _await_offline(self) -> None:
        request = agent_pb2.GetAgentRequest(agent_id=self._config.agent_id)
        while True:
            await asyncio.sleep(1.0)
            agent = (await self._stub.GetAgent(request, timeout=RPC_TIMEOUT_SECONDS)).agent
            if agent.status != agent_pb2.AGENT_STATUS_DRAINING:
                return

    async def beat(self, task_ids: list[str]) -> agent_pb2.HeartbeatResponse:
        request = agent_pb2.HeartbeatRequest(
            agent_id=self._config.agent_id, current_task_ids=task_ids
        )
        reply = await self._stub.Heartbeat(request, timeout=RPC_TIMEOUT_SECONDS)
        if reply.ttl_seconds > 0:
            self.ttl_seconds = reply.ttl_seconds
        return reply

    async def heartbeat_loop(
        self, task_ids: Callable[[], list[str]], load_changed: asyncio.Event
    ) -> None:
        """Beats every ttl/3, and sooner when the load changed, but at most once per
        BEAT_GAP_SECONDS or ttl/3, whichever is shorter (a busy worker's load changes many
        times a second, and the task service, not the heartbeat, is what routing counts on;
        a gap as long as the TTL would let the agent expire between beats); returns if the
        agent is gone."""
        while True:
            load_changed.clear()
            beat_at = asyncio.get_running_loop().time()
            try:
                reply = await self.beat(task_ids())
            except grpc.aio.AioRpcError as exc:
                log.warning("heartbeat failed: %s", exc.details())
            else:
                if reply.agent.status in GONE and not self.draining:
                    log.warning("agent is %s: finishing work and stopping", _status(reply.agent))
                    return
            # Not wait_for: on 3.11 it swallows a cancel that lands as the event fires.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(beat_at + self.ttl_seconds / 3):
                    await load_changed.wait()
            gap = min(BEAT_GAP_SECONDS, self.ttl_seconds / 3)
            await asyncio.sleep(beat_at + gap - asyncio.get_running_loop().time())

    async def drain(self) -> None:
        self.draining = True
        request = agent_pb2.DrainAgentRequest(
            agent_id=self._config.agent_id, actor=self._config.name, reason="worker stopping"
        )
        try:
            await self._stub.DrainAgent(request, timeout=RPC_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as exc:
            # Already draining, deregistered or unreachable: shutdown goes on regardless.
            log.warning("drain refused: %s", exc.details())


def _status(agent: agent_pb2.Agent) -> str:
    return agent_pb2.AgentStatus.Name(agent.status).removeprefix("AGENT_STATUS_")
