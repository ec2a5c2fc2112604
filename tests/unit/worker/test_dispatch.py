"""How the worker treats assignment messages it must not start: others', duplicates, newer,
and those beyond its free slots, which it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.task.v1 import task_pb2
from orchestrator.common.settings import Settings
from orchestrator.worker import Worker, WorkerConfig, agent_id_for
from orchestrator.worker.executors import ShellExecutor
from orchestrator.worker.runner import Run, TaskRunner


class FakeMsg:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.acked = False
        self.nak_delay: float | None = None

    async def ack(self) -> None:
        self.acked = True

    async def nak(self, delay: float | None = None) -> None:
        self.nak_delay = delay

    async def in_progress(self) -> None:
        pass


def _assigned(agent_id: str, token: int, task_id: str = "t-1") -> FakeMsg:
    task = task_pb2.Task(id=task_id, assigned_agent_id=agent_id, fencing_token=token)
    event = events_pb2.Event(type="task.assigned", task=events_pb2.TaskEvent(task=task))
    return FakeMsg(event.SerializeToString())


def _worker(tmp_path: Path, max_tasks: int = 2) -> Worker:
    config = WorkerConfig(name="AGENT-ME", workspace=tmp_path, max_tasks=max_tasks)
    worker = Worker(Settings(agent_prefetch=2), config, ShellExecutor())
    running = task_pb2.Task(id="t-1", fencing_token=4)
    worker.runs["t-1"] = Run(task=running, touch=FakeMsg(b"").in_progress)
    return worker


def _full_worker(tmp_path: Path) -> Worker:
    """One slot, taken by t-1's run: what comes next is held."""
    worker = _worker(tmp_path, max_tasks=1)
    worker._in_slots.add("t-1")
    return worker


# The runner is never reached for these messages: a None stands in for it.
NO_RUNNER = cast(TaskRunner, None)


async def test_other_agents_assignments_are_acked(tmp_path: Path) -> None:
    msg = _assigned(agent_id_for("AGENT-OTHER"), 9)
    await _worker(tmp_path)._dispatch(cast(Any, msg), NO_RUNNER)
    assert msg.acked


async def test_a_redelivery_of_a_running_task_is_acked_not_started(tmp_path: Path) -> None:
    worker = _worker(tmp_path)
    msg = _assigned(worker.agent_id, 4)
    await worker._dispatch(cast(Any, msg), NO_RUNNER)
    assert msg.acked and list(worker.runs) == ["t-1"]


async def test_a_newer_assignment_waits_for_the_old_run(tmp_path: Path) -> None:
    worker = _worker(tmp_path)
    msg = _assigned(worker.agent_id, 5)
    await worker._dispatch(cast(Any, msg), NO_RUNNER)
    assert not msg.acked and msg.nak_delay is not None


async def test_an_assignment_beyond_the_free_slots_is_held_not_started(tmp_path: Path) -> None:
    worker = _full_worker(tmp_path)
    msg = _assigned(worker.agent_id, 1, "t-2")
    await worker._dispatch(cast(Any, msg), NO_RUNNER)
    assert worker.held == ["t-2"] and worker.runs["t-2"].handle is None
    assert not msg.acked and msg.nak_delay is None
    assert worker._current_ids() == ["t-1"]  # the heartbeat names what runs, not what waits


async def test_a_redelivery_of_a_held_task_is_acked_and_held_once(tmp_path: Path) -> None:
    worker = _full_worker(tmp_path)
    first = _assigned(worker.agent_id, 1, "t-2")
    again = _assigned(worker.agent_id, 1, "t-2")
    await worker._dispatch(cast(Any, first), NO_RUNNER)
    await worker._dispatch(cast(Any, again), NO_RUNNER)
    assert again.acked and not first.acked and worker.held == ["t-2"]


async def test_a_newer_assignment_of_a_held_task_takes_its_place(tmp_path: Path) -> None:
    worker = _full_worker(tmp_path)
    stale = _assigned(worker.agent_id, 1, "t-2")
    newer = _assigned(worker.agent_id, 2, "t-2")
    await worker._dispatch(cast(Any, stale), NO_RUNNER)
    await worker._dispatch(cast(Any, newer), NO_RUNNER)
    assert stale.acked and not newer.acked and newer.nak_delay is None
    assert worker.held == ["t-2"] and worker.runs["t-2"].token == 2


async def test_the_worker_fetches_for_its_free_slots_and_its_prefetch(tmp_path: Path) -> None:
    worker = _full_worker(tmp_path)
    assert worker._room_left() == 2
    await worker._dispatch(cast(Any, _assigned(worker.agent_id, 1, "t-2")), NO_RUNNER)
    await worker._dispatch(cast(Any, _assigned(worker.agent_id, 1, "t-3")), NO_RUNNER)
    assert worker._room_left() == 0 and worker.held == ["t-2", "t-3"]
