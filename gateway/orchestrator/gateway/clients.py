"""The gateway's gRPC channels to the services and the stubs the routes call.

Channels connect lazily on their first call, so building this does no I/O; it must still be built
inside the running event loop (grpc.aio binds channels to it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

import grpc

from orchestrator.api.agent.v1 import agent_pb2_grpc
from orchestrator.api.context.v1 import context_pb2_grpc
from orchestrator.api.session.v1 import session_pb2_grpc
from orchestrator.api.task.v1 import task_pb2_grpc
from orchestrator.common.channels import open_channel
from orchestrator.common.settings import Settings

if TYPE_CHECKING:
    from orchestrator.api.agent.v1.agent_pb2_grpc import AgentServiceAsyncStub
    from orchestrator.api.context.v1.context_pb2_grpc import ContextServiceAsyncStub
    from orchestrator.api.session.v1.session_pb2_grpc import SessionServiceAsyncStub
    from orchestrator.api.task.v1.task_pb2_grpc import TaskServiceAsyncStub

# Deadline of every unary call the gateway makes; a browser should not wait longer.
DEFAULT_RPC_TIMEOUT_SECONDS = 10.0


# The services of the mesh, by the name readiness reports each under.
SERVICE_NAMES: tuple[str, ...] = ("session", "agent", "task", "context")


def service_addresses(settings: Settings) -> dict[str, str]:
    """The gRPC address of each service of the mesh, by the name readiness reports it under."""
    return {
        "session": settings.session_addr,
        "agent": settings.agent_addr,
        "task": settings.task_addr,
        "context": settings.context_addr,
    }


class ServiceClients:
    def __init__(
        self,
        *,
        session: SessionServiceAsyncStub,
        agent: AgentServiceAsyncStub,
        task: TaskServiceAsyncStub,
        context: ContextServiceAsyncStub,
        channels: Mapping[str, grpc.aio.Channel] | None = None,
        timeout: float = DEFAULT_RPC_TIMEOUT_SECONDS,
    ) -> None:
        self.session = session
        self.agent = agent
        self.task = task
        self.context = context
        # By service name; readiness asks each for grpc.health.v1. Empty for in-process fakes.
        self.channels = dict(channels or {})
        self.timeout = timeout

    @classmethod
    def connect(cls, settings: Settings) -> ServiceClients:
        # A 10,000-task graph is a reply of several MB: above gRPC's 4 MB default.
        options = [("grpc.max_receive_message_length", 64 << 20)]
        channels = {
            name: open_channel(address, settings, options=options)
            for name, address in service_addresses(settings).items()
        }
        return cls(
            session=session_pb2_grpc.SessionServiceStub(channels["session"]),
            agent=agent_pb2_grpc.AgentServiceStub(channels["agent"]),
            task=task_pb2_grpc.TaskServiceStub(channels["task"]),
            context=context_pb2_grpc.ContextServiceStub(channels["context"]),
            channels=channels,
        )

    async def close(self) -> None:
        await asyncio.gather(*(channel.close(grace=1.0) for channel in self.channels.values()))
