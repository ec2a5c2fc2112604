"""How the worker treats assignment messages it must not start: others', duplicates, newer."""

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


def _assigned(agent_id: str, token: int) -> FakeMsg:
    task = task_pb2.Task(id="t-1", assigned_agent_id=agent_id, fencing_token=token)
    event = events_pb2.Event(type="task.assigned", task=events_pb2.TaskEvent(task=task))
    return FakeMsg(event.SerializeToString())


def _worker(tmp_path: Path) -> Worker:
    config = WorkerConfig(name="AGENT-ME", workspace=tmp_path, max_tasks=2)
    worker = Worker(Settings(), config, ShellExecutor())
    running = task_pb2.Task(id="t-1", fencing_token=4)
    worker.runs["t-1"] = Run(task=running, touch=FakeMsg(b"").in_progress)
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
