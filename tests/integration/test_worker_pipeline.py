"""The worker's slot cycle: assignments held beyond its slots, reports sent after the slot frees.

A worker fetches up to `max_tasks + agent_prefetch` assignments and holds the extra ones, not
started, until a slot frees; a finished run's report goes on while its slot takes the next task.
In-process workers against the real agent and task services and JetStream, with an executor the
test ends at will, so every step is the test's to order.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from nats.errors import TimeoutError as NatsTimeoutError

from orchestrator.api.agent.v1 import agent_pb2, agent_pb2_grpc
from orchestrator.api.common.v1 import taxonomy_pb2
from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.task.v1 import task_pb2 as pb
from orchestrator.api.task.v1 import task_pb2_grpc
from orchestrator.common.pull import fetch_ready
from orchestrator.common.settings import Settings
from orchestrator.worker import Worker, WorkerConfig
from orchestrator.worker import worker as worker_module
from orchestrator.worker.executors.base import ExecutionResult, Job
from orchestrator.worker.work_stream import WorkStream
from orchestrator.worker.worker import _first_of
from tests.support.mesh import wait_until, worker_running

pytestmark = pytest.mark.timeout(30)

S = pb.TaskStatus
# Held together by no other test's agent: only the worker under test is routed these tasks.
CAPABILITIES = (taxonomy_pb2.CAPABILITY_RESOURCE_ALLOCATION, taxonomy_pb2.CAPABILITY_SCALING)
if TYPE_CHECKING:
    TaskStub = task_pb2_grpc.TaskServiceAsyncStub
    AgentStub = agent_pb2_grpc.AgentServiceAsyncStub


class Gated:
    """An executor whose runs end when the test finishes them (or after `lasts` seconds), and
    that remembers which tasks it ran and how many at once."""

    uses_session = False

    def __init__(self, lasts: float | None = None) -> None:
        self.lasts = lasts
        self.started: list[str] = []
        self.running = 0
        self.most = 0
        self._ends: dict[str, asyncio.Event] = {}

    def finish(self, task_id: str) -> None:
        self._ends.setdefault(task_id, asyncio.Event()).set()

    async def run(self, job: Job) -> ExecutionResult:
        self.started.append(job.task.id)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            end = self._ends.setdefault(job.task.id, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.lasts):
                    await _first_of(end, job.cancel)
        finally:
            self.running -= 1
        return ExecutionResult(
            exit_code=0, duration_seconds=0.0, output_tail="", cancelled=job.cancel.is_set()
        )


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings,
    workspace: Path,
    executor: Gated,
    *,
    max_tasks: int,
    prefetch: int,
    grace: float = 5.0,
) -> AsyncIterator[Worker]:
    """A worker with its own prefetch (the services keep theirs: the test assigns by hand)."""
    name = f"AGENT-P-{uuid.uuid4().hex[:10].upper()}"
    config = WorkerConfig(
        name=name,
        workspace=workspace,
        capabilities=CAPABILITIES,
        max_tasks=max_tasks,
        grace_seconds=grace,
    )
    worker = Worker(settings.model_copy(update={"agent_prefetch": prefetch}), config, executor)
    async with worker_running(worker, stop_within=20) as running:
        yield running


async def _assign(tasks: TaskStub, worker: Worker, title: str) -> pb.Task:
    """A new task assigned to the worker (by the scheduler, or by hand when it did not)."""
    created = await tasks.CreateTask(
        pb.CreateTaskRequest(
            session_id=str(uuid.uuid4()),
            title=title,
            required_capabilities=CAPABILITIES,
            max_attempts=1,
            actor="tests",
        )
    )
    task_id = created.task.id
    await wait_until(lambda: _status_in(tasks, task_id, S.TASK_STATUS_READY, *_TAKEN), what="READY")
    with contextlib.suppress(grpc.aio.AioRpcError):  # the scheduler may have been first
        await tasks.AssignTask(pb.AssignTaskRequest(task_id=task_id, agent_id=worker.agent_id))
    task = await _get(tasks, task_id)
    assert task.assigned_agent_id == worker.agent_id, task.status_reason
    return task


_TAKEN = (S.TASK_STATUS_ASSIGNED, S.TASK_STATUS_IN_PROGRESS, S.TASK_STATUS_COMPLETED)


async def _get(tasks: TaskStub, task_id: str) -> pb.Task:
    return (await tasks.GetTask(pb.GetTaskRequest(task_id=task_id))).task


async def _status_in(tasks: TaskStub, task_id: str, *statuses: int) -> bool:
    return (await _get(tasks, task_id)).status in statuses


def _is(tasks: TaskStub, task_id: str, *statuses: int) -> Callable[[], Awaitable[bool]]:
    return lambda: _status_in(tasks, task_id, *statuses)


async def _all_completed(tasks: TaskStub, *ids: str) -> None:
    for task_id in ids:
        await wait_until(
            _is(tasks, task_id, S.TASK_STATUS_COMPLETED), within=10, what=f"{task_id} COMPLETED"
        )


def _beats(agents: AgentStub, worker: Worker, *ids: str) -> Callable[[], Awaitable[bool]]:
    """The agent service's last heartbeat of the worker names these tasks."""

    async def check() -> bool:
        request = agent_pb2.GetAgentRequest(agent_id=worker.agent_id)
        agent = (await agents.GetAgent(request)).agent
        return sorted(agent.load.current_task_ids) == sorted(ids)

    return check


async def _unacked(nc: Any, settings: Settings, worker: Worker) -> tuple[int, int]:
    """(delivered and not acked, not yet delivered) on the worker's durable consumer."""
    info = await nc.jetstream().consumer_info(settings.stream_name, worker.config.durable)
    return info.num_ack_pending, info.num_pending


async def _all_acked(nc: Any, settings: Settings, worker: Worker) -> None:
    async def acked() -> bool:
        return await _unacked(nc, settings, worker) == (0, 0)

    await wait_until(acked, within=10, what="every assignment acked")


def _started(executor: Gated, *ids: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return executor.started == list(ids)

    return check


def _holds(worker: Worker, *ids: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return worker.held == list(ids)

    return check


async def _one_running_one_held(tasks: TaskStub, worker: Worker) -> tuple[pb.Task, pb.Task]:
    """Two tasks assigned to a worker of one slot: the first takes the slot, the second waits
    held (once it is)."""
    a = await _assign(tasks, worker, "a")
    b = await _assign(tasks, worker, "b")
    await wait_until(_holds(worker, b.id), what="b held")
    return a, b


@pytest.fixture
def fetch_gate(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """While cleared, the worker's fetches find nothing (as an empty consumer would answer)."""
    gate = asyncio.Event()
    gate.set()

    async def gated(sub: Any, batch: int, wait: float, linger: float = 0.0) -> list[Any]:
        if not gate.is_set():
            await asyncio.sleep(wait)
            raise NatsTimeoutError
        return await fetch_ready(sub, batch, wait, linger)

    monkeypatch.setattr(worker_module, "fetch_ready", gated)
    return gate


@pytest.fixture
def report_gate(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """While cleared, completions wait before they go out on the Work stream."""
    gate = asyncio.Event()
    gate.set()
    complete = WorkStream.CompleteTask

    async def gated(self: WorkStream, request: pb.CompleteTaskRequest) -> pb.CompleteTaskResponse:
        await gate.wait()
        return await complete(self, request)

    monkeypatch.setattr(WorkStream, "CompleteTask", gated)
    return gate


async def test_assignments_beyond_the_slots_are_held_not_started(
    settings: Settings, tasks: TaskStub, agents: AgentStub, tmp_path: Path
) -> None:
    executor = Gated()
    async with running_worker(settings, tmp_path, executor, max_tasks=1, prefetch=2) as worker:
        a = await _assign(tasks, worker, "a")
        await wait_until(_started(executor, a.id), what="a running")
        b = await _assign(tasks, worker, "b")
        c = await _assign(tasks, worker, "c")

        await wait_until(_holds(worker, b.id, c.id), what="b and c held")
        assert executor.started == [a.id]
        for waiting in (b, c):
            assert (await _get(tasks, waiting.id)).status == S.TASK_STATUS_ASSIGNED
        # The heartbeat names the running task, not the held ones.
        await wait_until(_beats(agents, worker, a.id), what="a heartbeat naming a alone")
        for task in (a, b, c):
            executor.finish(task.id)
        await _all_completed(tasks, a.id, b.id, c.id)
    assert executor.started == [a.id, b.id, c.id]


async def test_a_freed_slot_takes_a_held_assignment_without_fetching(
    settings: Settings, tasks: TaskStub, nc: Any, fetch_gate: asyncio.Event, tmp_path: Path
) -> None:
    executor = Gated()
    async with running_worker(settings, tmp_path, executor, max_tasks=1, prefetch=2) as worker:
        a = await _assign(tasks, worker, "a")
        b = await _assign(tasks, worker, "b")
        c = await _assign(tasks, worker, "c")
        await wait_until(_holds(worker, b.id, c.id), what="b, c held")
        fetch_gate.clear()  # from now on only what is held can run
        executor.finish(a.id)
        await wait_until(_started(executor, a.id, b.id), within=5, what="b taken at once")
        executor.finish(b.id)
        await wait_until(_started(executor, a.id, b.id, c.id), within=5, what="c taken")
        executor.finish(c.id)
        await _all_completed(tasks, a.id, b.id, c.id)
        await _all_acked(nc, settings, worker)
        fetch_gate.set()


async def test_held_assignments_are_handed_back_at_once_on_stop(
    settings: Settings, tasks: TaskStub, nc: Any, tmp_path: Path
) -> None:
    executor = Gated()
    async with running_worker(
        settings, tmp_path, executor, max_tasks=1, prefetch=2, grace=4.0
    ) as worker:
        a = await _assign(tasks, worker, "a")
        b = await _assign(tasks, worker, "b")
        c = await _assign(tasks, worker, "c")
        await wait_until(_holds(worker, b.id, c.id), what="b, c held")
        stopping = asyncio.create_task(worker.stop())
        # Back to READY well within the grace period the running task still has.
        for handed in (b, c):
            ready = _is(tasks, handed.id, S.TASK_STATUS_READY)
            await wait_until(ready, within=3, what="a held task handed back")
        assert (await _get(tasks, a.id)).status == S.TASK_STATUS_IN_PROGRESS
        assert not worker.held
        await asyncio.wait_for(stopping, 10)
    for task in (a, b, c):
        released = await _get(tasks, task.id)
        assert released.status == S.TASK_STATUS_READY and released.attempt_count == 0
    assert executor.started == [a.id]
    assert await _unacked(nc, settings, worker) == (0, 0)


async def test_a_cancelled_held_assignment_is_dropped_and_never_runs(
    settings: Settings, tasks: TaskStub, nc: Any, tmp_path: Path
) -> None:
    executor = Gated()
    async with running_worker(settings, tmp_path, executor, max_tasks=1, prefetch=1) as worker:
        a, b = await _one_running_one_held(tasks, worker)
        await tasks.CancelTask(pb.CancelTaskRequest(task_id=b.id, reason="not needed"))

        async def dropped() -> bool:
            return b.id not in worker.runs and not worker.held

        await wait_until(dropped, within=10, what="b dropped")
        executor.finish(a.id)
        await _all_completed(tasks, a.id)
        await _all_acked(nc, settings, worker)
        assert executor.started == [a.id]
    assert (await _get(tasks, b.id)).status == S.TASK_STATUS_CANCELLED


async def test_a_redelivered_held_assignment_runs_once(
    settings: Settings, tasks: TaskStub, nc: Any, tmp_path: Path
) -> None:
    executor = Gated()
    async with running_worker(settings, tmp_path, executor, max_tasks=1, prefetch=2) as worker:
        a, b = await _one_running_one_held(tasks, worker)
        replay = events_pb2.Event(
            event_id=str(uuid.uuid4()), type="task.assigned", task=events_pb2.TaskEvent(task=b)
        )
        subject = f"orch.task.{b.session_id}.{b.id}.assigned.{worker.agent_id}"
        await nc.jetstream().publish(subject, replay.SerializeToString())

        async def replay_taken() -> bool:
            return await _unacked(nc, settings, worker) == (2, 0)  # a's and b's, not the replay

        await wait_until(replay_taken, within=10, what="the replay acked")
        assert worker.held == [b.id]
        executor.finish(a.id)
        executor.finish(b.id)
        await _all_completed(tasks, a.id, b.id)
        await _all_acked(nc, settings, worker)
    assert executor.started == [a.id, b.id]


async def test_a_report_goes_on_while_the_freed_slot_runs_the_next_task(
    settings: Settings,
    tasks: TaskStub,
    agents: AgentStub,
    nc: Any,
    report_gate: asyncio.Event,
    tmp_path: Path,
) -> None:
    executor = Gated()
    async with running_worker(settings, tmp_path, executor, max_tasks=1, prefetch=1) as worker:
        a, b = await _one_running_one_held(tasks, worker)
        report_gate.clear()
        executor.finish(a.id)
        await wait_until(_started(executor, a.id, b.id), within=5, what="b running")
        await wait_until(_is(tasks, b.id, S.TASK_STATUS_IN_PROGRESS), what="b IN_PROGRESS")
        # a's completion has not gone out: the task service, the heartbeat and JetStream
        # still see it as this worker's.
        assert (await _get(tasks, a.id)).status == S.TASK_STATUS_IN_PROGRESS
        await wait_until(_beats(agents, worker, a.id, b.id), what="a heartbeat naming both")
        assert await _unacked(nc, settings, worker) == (2, 0)
        report_gate.set()
        executor.finish(b.id)
        await _all_completed(tasks, a.id, b.id)
        await _all_acked(nc, settings, worker)
        await wait_until(_beats(agents, worker), what="an idle heartbeat")


async def test_stop_waits_for_the_reports_in_flight(
    settings: Settings, tasks: TaskStub, nc: Any, report_gate: asyncio.Event, tmp_path: Path
) -> None:
    executor = Gated()
    async with running_worker(
        settings, tmp_path, executor, max_tasks=1, prefetch=0, grace=0.5
    ) as worker:
        a = await _assign(tasks, worker, "a")
        await wait_until(_started(executor, a.id), what="a running")
        report_gate.clear()
        executor.finish(a.id)

        async def reporting() -> bool:
            return worker.busy_slots == 0 and a.id in worker.runs

        await wait_until(reporting, what="a's slot free, its report waiting")
        stopping = asyncio.create_task(worker.stop())
        await asyncio.sleep(1.5)  # past the grace period: the report is not cut short
        assert not stopping.done()
        assert (await _get(tasks, a.id)).status == S.TASK_STATUS_IN_PROGRESS
        report_gate.set()
        await asyncio.wait_for(stopping, 10)
    assert (await _get(tasks, a.id)).status == S.TASK_STATUS_COMPLETED
    assert await _unacked(nc, settings, worker) == (0, 0)


async def test_runs_never_exceed_the_slots_while_reports_and_held_work_overlap(
    settings: Settings, tasks: TaskStub, nc: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    complete = WorkStream.CompleteTask

    async def slow(self: WorkStream, request: pb.CompleteTaskRequest) -> pb.CompleteTaskResponse:
        await asyncio.sleep(0.3)  # a report outlasts the next run
        return await complete(self, request)

    monkeypatch.setattr(WorkStream, "CompleteTask", slow)
    executor = Gated(lasts=0.1)
    async with running_worker(settings, tmp_path, executor, max_tasks=2, prefetch=3) as worker:
        ids = [(await _assign(tasks, worker, f"t{n}")).id for n in range(8)]
        await _all_completed(tasks, *ids)
        await _all_acked(nc, settings, worker)
    assert sorted(executor.started) == sorted(ids)  # each once
    assert executor.most == 2
