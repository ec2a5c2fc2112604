"""GetGraph on a 10,000-task session: order, ready set and critical path (target < 1 s).

Setup: one session whose tasks form layers of LAYER_WIDTH; every task past the first layer
depends (finish-to-start, through CreateTask.depends_on) on two or three tasks of the layer
before, so the graph is 100 deep and 100 wide with about two edges per task. Tasks are created
layer by layer, IN_FLIGHT CreateTask calls at a time, with ids chosen here so a layer can name
the previous one before any reply is read. Then GetGraph is timed CALLS times after a warm-up
call, from request to parsed reply; the median is the figure.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid

import grpc

from orchestrator.api.task.v1 import task_pb2 as pb
from orchestrator.api.task.v1 import task_pb2_grpc

IN_FLIGHT = 64
LAYER_WIDTH = 100
CALLS = 5
TARGET_SECONDS = 1.0
# A 10,000-task graph is a few MB on the wire, above gRPC's 4 MB default.
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 << 20)]
_PRIORITIES = (pb.TASK_PRIORITY_HIGH, pb.TASK_PRIORITY_NORMAL, pb.TASK_PRIORITY_LOW)


def _layers(tasks: int, rng: random.Random) -> list[list[pb.CreateTaskRequest]]:
    """The CreateTask requests of one session, layer by layer."""
    session_id = str(uuid.uuid4())
    layers: list[list[pb.CreateTaskRequest]] = []
    previous: list[str] = []
    for start in range(0, tasks, LAYER_WIDTH):
        layer = []
        for position in range(min(LAYER_WIDTH, tasks - start)):
            picks = (
                {(position + offset) % len(previous) for offset in (0, 1, 37)}
                if previous
                else set()
            )
            optimistic = rng.uniform(0.5, 2.0)
            likely = optimistic * rng.uniform(1.0, 2.0)
            layer.append(
                pb.CreateTaskRequest(
                    session_id=session_id,
                    task_id=str(uuid.uuid4()),
                    title=f"bench task {start + position}",
                    priority=rng.choice(_PRIORITIES),
                    estimate=pb.PertEstimate(
                        optimistic_hours=optimistic,
                        most_likely_hours=likely,
                        pessimistic_hours=likely * rng.uniform(1.0, 3.0),
                    ),
                    depends_on=sorted(previous[i] for i in picks),
                    actor="bench",
                )
            )
        layers.append(layer)
        previous = [r.task_id for r in layer]
    return layers


async def _create(
    stub: task_pb2_grpc.TaskServiceAsyncStub, layers: list[list[pb.CreateTaskRequest]]
) -> None:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def create(request: pb.CreateTaskRequest) -> None:
        async with gate:
            await stub.CreateTask(request)

    for layer in layers:
        await asyncio.gather(*(create(r) for r in layer))


async def _time_graph(
    stub: task_pb2_grpc.TaskServiceAsyncStub, session_id: str
) -> tuple[list[float], pb.GetGraphResponse]:
    request = pb.GetGraphRequest(session_id=session_id)
    reply = await stub.GetGraph(request)
    seconds = []
    for _ in range(CALLS):
        began = time.perf_counter()
        reply = await stub.GetGraph(request)
        seconds.append(time.perf_counter() - began)
    return seconds, reply


async def bench_graph(address: str, tasks: int = 10_000) -> list[str]:
    """Builds a `tasks`-task session on the task service at `address`, times GetGraph on it,
    and returns the lines to print."""
    layers = _layers(tasks, random.Random(7))
    session_id = layers[0][0].session_id
    edges = sum(len(r.depends_on) for layer in layers for r in layer)
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        stub: task_pb2_grpc.TaskServiceAsyncStub = task_pb2_grpc.TaskServiceStub(channel)
        began = time.perf_counter()
        await _create(stub, layers)
        setup = time.perf_counter() - began
        seconds, reply = await _time_graph(stub, session_id)
    median = statistics.median(seconds)
    path = reply.critical_path
    verdict = "ok" if median < TARGET_SECONDS else "SLOWER THAN TARGET"
    return [
        f"task graph: {tasks:,} tasks, {edges:,} dependencies in one session "
        f"({len(layers)} layers of {LAYER_WIDTH}, finish-to-start)",
        f"  setup: {IN_FLIGHT} CreateTask calls in flight, layer by layer: "
        f"{setup:.1f} s ({tasks / setup:.0f} tasks/s)",
        f"  GetGraph median {median * 1000:.0f} ms (min {min(seconds) * 1000:.0f}, "
        f"max {max(seconds) * 1000:.0f}) over {CALLS} calls, {reply.ByteSize() / 1e6:.1f} MB "
        f"(target < {TARGET_SECONDS * 1000:.0f} ms: {verdict})",
        f"  critical path {len(path.task_ids)} tasks, {path.expected_hours:.1f} h "
        f"± {path.sigma_hours:.1f} h; {len(reply.ready_task_ids)} ready; "
        f"{len(reply.topological_order):,} in order",
    ]
