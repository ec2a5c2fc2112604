"""Which assignment messages a worker takes, and the worker's configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.api.agent.v1 import agent_pb2
from orchestrator.api.common.v1 import taxonomy_pb2
from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.task.v1 import task_pb2
from orchestrator.worker.config import (
    WorkerConfig,
    WorkerConfigError,
    agent_id_for,
    parse_agent_type,
    parse_capabilities,
)
from orchestrator.worker.messages import assignment_for, decode_task_event

ME = agent_id_for("AGENT-ME")


def _assigned(agent_id: str, token: int = 4) -> bytes:
    task = task_pb2.Task(
        id="t-1", session_id="s-1", assigned_agent_id=agent_id, fencing_token=token
    )
    event = events_pb2.Event(type="task.assigned", task=events_pb2.TaskEvent(task=task))
    return event.SerializeToString()


def test_an_assignment_to_this_agent_is_taken() -> None:
    found = assignment_for(_assigned(ME), ME)
    assert found is not None
    assert (found.task_id, found.fencing_token) == ("t-1", 4)


@pytest.mark.parametrize(
    "data",
    [
        _assigned(agent_id_for("AGENT-OTHER")),
        _assigned(ME, token=0),
        events_pb2.Event(
            type="agent.registered", agent=events_pb2.AgentEvent()
        ).SerializeToString(),
        b"\xff\xfe not a protobuf",
    ],
    ids=["other-agent", "no-token", "not-a-task-event", "garbage"],
)
def test_everything_else_is_ignored(data: bytes) -> None:
    assert assignment_for(data, ME) is None


def test_decode_task_event_of_garbage_is_none() -> None:
    assert decode_task_event(b"\x0a\x05") is None


def test_agent_id_is_stable_per_name() -> None:
    assert agent_id_for("AGENT-A") == agent_id_for("AGENT-A") != agent_id_for("AGENT-B")


def test_config_validates_and_names_the_durable(tmp_path: Path) -> None:
    config = WorkerConfig(name="AGENT-IMPL-01", workspace=tmp_path)
    assert config.durable == "worker-agent-impl-01"
    with pytest.raises(WorkerConfigError):
        WorkerConfig(name="agent-lower", workspace=tmp_path)
    with pytest.raises(WorkerConfigError):
        WorkerConfig(name="AGENT-A", workspace=tmp_path, max_tasks=0)


def test_parsing_of_type_and_capabilities() -> None:
    assert parse_agent_type("Reviewer") == agent_pb2.AGENT_TYPE_REVIEWER
    assert parse_capabilities("code_generation, testing") == (
        taxonomy_pb2.CAPABILITY_CODE_GENERATION,
        taxonomy_pb2.CAPABILITY_TESTING,
    )
    for bad in ("unspecified", "wizard"):
        with pytest.raises(WorkerConfigError):
            parse_agent_type(bad)
    with pytest.raises(WorkerConfigError):
        parse_capabilities(" , ")


def test_an_assignment_is_published_for_its_agent_and_matched_by_its_filter_only() -> None:
    from orchestrator.common.events import event_subject
    from orchestrator.worker.messages import assigned_subject

    def published(agent_id: str, kind: str = "task.assigned") -> str:
        task = task_pb2.Task(id="t-1", session_id="s-1", assigned_agent_id=agent_id)
        event = events_pb2.Event(
            type=kind,
            aggregate_type="task",
            aggregate_id="t-1",
            session_id="s-1",
            task=events_pb2.TaskEvent(task=task),
        )
        return event_subject(event)

    def matches(subject: str, pattern: str) -> bool:
        wanted, got = pattern.split("."), subject.split(".")
        if len(wanted) != len(got):
            return False
        return all(w in ("*", g) for w, g in zip(wanted, got, strict=True))

    mine = published(ME)
    assert mine == f"orch.task.s-1.t-1.assigned.{ME}"
    assert matches(mine, assigned_subject(ME))
    assert not matches(published(agent_id_for("AGENT-OTHER")), assigned_subject(ME))
    # Other events keep their subjects; an id that cannot be a subject token adds nothing.
    assert published(ME, "task.started") == "orch.task.s-1.t-1.started"
    assert published("a.b") == "orch.task.s-1.t-1.assigned"
