"""The gateway's gRPC channels to the services and the stubs the routes call.

Channels connect lazily on their first call, so building this does no I/O; it must still be built
inside the running event loop (grpc.aio binds channels to it). Adding the agent, task or context
stub is one attribute and one line in `connect`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

import grpc

from orchestrator.api.session.v1 import session_pb2_grpc
from orchestrator.common.settings import Settings

if TYPE_CHECKING:
    from orchestrator.api.session.v1.session_pb2_grpc import SessionServiceAsyncStub

# Deadline of every unary call the gateway makes; a browser should not wait longer.
DEFAULT_RPC_TIMEOUT_SECONDS = 10.0


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
        channels: Mapping[str, grpc.aio.Channel] | None = None,
        timeout: float = DEFAULT_RPC_TIMEOUT_SECONDS,
    ) -> None:
        self.session = session
        # By service name; readiness asks each for grpc.health.v1. Empty for in-process fakes.
        self.channels = dict(channels or {})
        self.timeout = timeout

    @classmethod
    def connect(cls, settings: Settings) -> ServiceClients:
        channels = {
            name: grpc.aio.insecure_channel(address)
            for name, address in service_addresses(settings).items()
        }
        return cls(
            session=session_pb2_grpc.SessionServiceStub(channels["session"]), channels=channels
        )

    async def close(self) -> None:
        await asyncio.gather(*(channel.close(grace=1.0) for channel in self.channels.values()))
