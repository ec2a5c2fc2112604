"""Fixtures the integration tests share beyond the stack's (tests/conftest.py)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from orchestrator.api.agent.v1 import agent_pb2, agent_pb2_grpc
from orchestrator.api.common.v1 import taxonomy_pb2
from orchestrator.api.session.v1 import session_pb2_grpc
from orchestrator.api.task.v1 import task_pb2_grpc

Stub = Any  # the generated stubs are typed for the synchronous API


@dataclass
class Mesh:
    """gRPC stubs of the session, agent and task services the fixtures run in this process."""

    sessions: Stub
    agents: Stub
    tasks: Stub


@pytest.fixture
async def tasks(task_service: str) -> AsyncIterator[Stub]:
    """A stub of the task service the fixtures run in this process."""
    async with grpc.aio.insecure_channel(task_service) as channel:
        yield task_pb2_grpc.TaskServiceStub(channel)


@pytest.fixture
async def agents(agent_service: str) -> AsyncIterator[Stub]:
    """A stub of the agent service the fixtures run in this process."""
    async with grpc.aio.insecure_channel(agent_service) as channel:
        yield agent_pb2_grpc.AgentServiceStub(channel)


@pytest.fixture
async def mesh(session_service: str, agent_service: str, task_service: str) -> AsyncIterator[Mesh]:
    async with (
        grpc.aio.insecure_channel(session_service) as s,
        grpc.aio.insecure_channel(agent_service) as a,
        grpc.aio.insecure_channel(task_service) as t,
    ):
        yield Mesh(
            session_pb2_grpc.SessionServiceStub(s),
            agent_pb2_grpc.AgentServiceStub(a),
            task_pb2_grpc.TaskServiceStub(t),
        )


@contextlib.asynccontextmanager
async def configuration_agent(mesh: Mesh, prefix: str) -> AsyncIterator[str]:
    """A live agent (registered, one heartbeat) holding CONFIGURATION, a capability no other
    test's agent holds, with room for ten tasks; deregistered at the end. Yields its id."""
    request = agent_pb2.RegisterAgentRequest(
        name=f"{prefix}-{uuid.uuid4().hex[:10].upper()}",
        agent_type=agent_pb2.AGENT_TYPE_IMPLEMENTER,
        primary_capabilities=[taxonomy_pb2.CAPABILITY_CONFIGURATION],
        max_concurrent_tasks=10,
    )
    ident = str((await mesh.agents.RegisterAgent(request)).agent.id)
    await mesh.agents.Heartbeat(agent_pb2.HeartbeatRequest(agent_id=ident))
    yield ident
    await mesh.agents.DeregisterAgent(agent_pb2.DeregisterAgentRequest(agent_id=ident))
