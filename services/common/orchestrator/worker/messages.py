"""Which JetStream messages concern this worker. Pure: no I/O, so it is unit-tested alone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.task.v1 import task_pb2


def assigned_subject(agent_id: str) -> str:
    """The assignments of one agent (see orchestrator.common.events.event_subject)."""
    return f"orch.task.*.*.assigned.{agent_id}"


# Events after which a run here must stop: the task was cancelled or paused by someone else.
ABORT_SUBJECTS = ("orch.task.*.*.cancelled", "orch.task.*.*.paused")


@dataclass(frozen=True)
class Assignment:
    task: task_pb2.Task
    # The W3C trace context of the event that assigned it: the run continues that trace.
    trace_context: Mapping[str, str] = field(default_factory=dict)

    @property
    def task_id(self) -> str:
        return self.task.id

    @property
    def fencing_token(self) -> int:
        return self.task.fencing_token


def _task_event(data: bytes) -> events_pb2.Event | None:
    event = events_pb2.Event()
    try:
        event.ParseFromString(data)
    except DecodeError:
        return None
    if event.WhichOneof("payload") != "task" or not event.task.task.id:
        return None
    return event


def decode_task_event(data: bytes) -> task_pb2.Task | None:
    """The task of a task event; None for anything else or garbage."""
    event = _task_event(data)
    return None if event is None else event.task.task


def assignment_for(data: bytes, agent_id: str) -> Assignment | None:
    """The assignment when the message assigns a task to `agent_id`, otherwise None."""
    event = _task_event(data)
    if event is None:
        return None
    task = event.task.task
    if task.assigned_agent_id != agent_id or task.fencing_token <= 0:
        return None
    return Assignment(task, dict(event.trace_context))
