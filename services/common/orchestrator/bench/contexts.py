"""Context update throughput: UpdateContext with expected_version, many contexts in flight.

Each call takes a context nobody else is writing, so every update is accepted (a stale
version would be a bug, and is counted): the figure is the cost of an accepted write, which
is one guarded statement carrying the data, the history rows and the outbox event.
"""

from __future__ import annotations

import asyncio
import uuid

import grpc
from google.protobuf import struct_pb2

from orchestrator.api.context.v1 import context_pb2 as pb
from orchestrator.api.context.v1 import context_pb2_grpc
from orchestrator.bench.load import closed_loop

IN_FLIGHT = 64


class _Writers:
    """Hands each call a context no other call holds, with the version it is at."""

    def __init__(self, stub: context_pb2_grpc.ContextServiceAsyncStub) -> None:
        self._stub = stub
        self._free: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self.calls = 0
        self.failures = 0

    async def create(self, count: int) -> None:
        for _ in range(count):
            # GLOBAL contexts have no owner, so each needs a name of its own.
            request = pb.CreateContextRequest(
                scope=pb.CONTEXT_SCOPE_GLOBAL, name=f"bench-{uuid.uuid4()}", actor="bench"
            )
            created = (await self._stub.CreateContext(request)).context
            self._free.put_nowait((created.id, created.version))

    async def update(self) -> None:
        context_id, version = await self._free.get()
        self.calls += 1
        operation = pb.ContextOperation(
            operation_type=pb.CONTEXT_OPERATION_TYPE_SET,
            path="progress.step",
            value=struct_pb2.Value(number_value=self.calls),
        )
        request = pb.UpdateContextRequest(
            context_id=context_id,
            expected_version=version,
            changed_by="bench",
            operations=[operation],
        )
        try:
            version = (await self._stub.UpdateContext(request)).context.version
        except grpc.aio.AioRpcError:
            self.failures += 1
        finally:
            self._free.put_nowait((context_id, version))


async def bench_updates(address: str, contexts: int = 64, updates: int = 4_000) -> list[str]:
    """Runs `updates` UpdateContext calls over `contexts` new GLOBAL contexts, at most 64 in
    flight, and returns printable lines: throughput, p50 and p99, and failed calls."""
    in_flight = min(IN_FLIGHT, contexts)
    async with grpc.aio.insecure_channel(address) as channel:
        writers = _Writers(context_pb2_grpc.ContextServiceStub(channel))
        await writers.create(contexts)
        result = await closed_loop(writers.update, updates, in_flight)
    return [
        f"context updates: {contexts} contexts, {in_flight} in flight, "
        "expected_version on every call",
        "  " + result.line("context UpdateContext"),
        f"  failed calls {writers.failures} (expected 0)",
    ]
