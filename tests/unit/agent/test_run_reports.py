"""Which task events end a run on an agent, and what the track record learns from them."""

from __future__ import annotations

from orchestrator.agent.domain import TaskOutcome
from orchestrator.agent.task_releases import run_report
from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.task.v1 import task_pb2

T = task_pb2


def _event(
    kind: str, previous: int, *, agent: str = "agent-1", started: bool = True
) -> events_pb2.Event:
    event = events_pb2.Event(type=f"task.{kind}")
    event.occurred_at.FromSeconds(110)
    task = event.task.task
    task.id, task.fencing_token, task.last_agent_id = "task-1", 3, agent
    if started:
        task.started_at.FromSeconds(100)
    event.task.previous_status = previous  # type: ignore[assignment]
    return event


def test_a_completed_run_is_a_success_lasting_from_start_to_end() -> None:
    report = run_report(_event("completed", T.TASK_STATUS_IN_PROGRESS))
    assert report is not None
    assert (report.task_id, report.fencing_token) == ("task-1", 3)
    assert report.outcome is TaskOutcome.COMPLETED and report.duration_seconds == 10.0


def test_finished_work_awaiting_a_human_or_a_finish_dependency_counts_as_done() -> None:
    for kind in ("awaiting_approval", "held"):
        report = run_report(_event(kind, T.TASK_STATUS_IN_PROGRESS))
        assert report is not None and report.outcome is TaskOutcome.COMPLETED


def test_failures_count_whether_or_not_a_retry_follows() -> None:
    for kind in ("failed", "retry_scheduled"):
        report = run_report(_event(kind, T.TASK_STATUS_IN_PROGRESS))
        assert report is not None and report.outcome is TaskOutcome.FAILED


def test_events_that_end_no_run_report_nothing() -> None:
    # An approval completes a task that was BLOCKED, not running; released and expired leases
    # are not the agent's result; a task never run on an agent names none.
    assert run_report(_event("completed", T.TASK_STATUS_BLOCKED)) is None
    assert run_report(_event("released", T.TASK_STATUS_IN_PROGRESS)) is None
    assert run_report(_event("lease_expired", T.TASK_STATUS_IN_PROGRESS)) is None
    assert run_report(_event("completed", T.TASK_STATUS_IN_PROGRESS, agent="")) is None
    assert run_report(_event("failed", T.TASK_STATUS_IN_PROGRESS, started=False)) is None
