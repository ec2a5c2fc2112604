"""Creation, leases and fencing, outcomes, retries with backoff, approval and control."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from orchestrator.common.errors import FailedPrecondition, InvalidArgument, NotFound
from orchestrator.task.domain import (
    Capability,
    Dependency,
    DependencyType,
    Estimate,
    Hold,
    Task,
    TaskComplexity,
    TaskEventType,
    TaskStatus,
    Usage,
)

MakeTask = Callable[..., Task]
S = TaskStatus
E = TaskEventType


def status(task: Task) -> TaskStatus:
    """Read through a call: mypy would otherwise keep a status narrowed across mutations."""
    return task.status


def test_create_defaults(make_task: MakeTask, t0: datetime) -> None:
    task = Task.create(now=t0, session_id="s", title="  Write the parser  ")
    assert task.title == "Write the parser" and status(task) is S.PENDING and task.version == 1
    assert task.complexity is TaskComplexity.MODERATE
    assert task.estimate == Estimate(1.0, 2.0, 4.0) and task.max_attempts == 3
    [event] = task.pull_events()
    assert (event.type, event.version, event.status) == (E.CREATED, 1, S.PENDING)


def test_complexity_and_estimate_follow_each_other(t0: datetime) -> None:
    by_complexity = Task.create(now=t0, session_id="s", title="x", complexity="expert")
    assert by_complexity.estimate.expected_hours >= 8
    by_estimate = Task.create(now=t0, session_id="s", title="x", estimate=Estimate(0.1, 0.2, 0.3))
    assert by_estimate.complexity is TaskComplexity.TRIVIAL


def test_depends_on_makes_finish_to_start_edges(t0: datetime) -> None:
    ids = ["0b6e7f0e-0000-4000-8000-00000000000a", "0b6e7f0e-0000-4000-8000-00000000000b"]
    task = Task.create(now=t0, session_id="s", title="x", depends_on=[*ids, ids[0]])
    assert [(d.predecessor_id, d.dependency_type) for d in task.dependencies] == [
        (ids[0], DependencyType.FINISH_TO_START),
        (ids[1], DependencyType.FINISH_TO_START),
    ]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": " "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"description": "d" * 10_001}, "description"),
        ({"priority": "urgent"}, "priority"),
        ({"complexity": "huge"}, "complexity"),
        ({"required_capabilities": ["juggling"]}, "required_capabilities"),
        ({"max_attempts": 11}, "max_attempts"),
        ({"max_attempts": -1}, "max_attempts"),
        ({"task_id": "nope"}, "task_id"),
        ({"depends_on": ["nope"]}, "depends_on"),
        ({"technologies": [""]}, "technologies"),
        ({"metadata": {"x": float("nan")}}, "metadata"),
    ],
)
def test_invalid_fields_are_named(t0: datetime, fields: dict[str, Any], field: str) -> None:
    fields.setdefault("title", "x")
    with pytest.raises(InvalidArgument) as err:
        Task.create(now=t0, session_id="s", **fields)
    assert err.value.field == field


def test_self_dependency_is_refused(t0: datetime) -> None:
    ident = "0b6e7f0e-0000-4000-8000-00000000000a"
    with pytest.raises(InvalidArgument) as err:
        Task.create(now=t0, session_id="s", title="x", task_id=ident, depends_on=[ident])
    assert err.value.field == "depends_on" and "itself" in err.value.message


def test_assign_grants_a_lease_under_a_new_token(make_task: MakeTask, t0: datetime) -> None:
    task = make_task("ready")
    token = task.assign(t0, "agent-7", 60, actor="scheduler")
    assert token == 1 and task.fencing_token == 1 and status(task) is S.ASSIGNED
    assert task.assigned_agent_id == "agent-7" and task.assigned_at == t0
    assert task.lease_expires_at == t0 + timedelta(seconds=60)
    task.release(t0, token)
    assert status(task) is S.READY and task.lease_expires_at is None
    assert task.assigned_agent_id == ""
    assert task.assign(t0, "agent-8", 0) == 2
    assert task.lease_expires_at == t0 + timedelta(seconds=300)


def test_assign_refuses_parents_backoff_and_bad_leases(make_task: MakeTask, t0: datetime) -> None:
    parent = make_task("ready")
    parent.child_ids = ["c1"]
    with pytest.raises(FailedPrecondition, match="subtasks run instead"):
        parent.assign(t0, "agent", 0)
    waiting = make_task("ready")
    waiting.next_attempt_at = t0 + timedelta(seconds=5)
    with pytest.raises(FailedPrecondition, match="waits until"):
        waiting.assign(t0, "agent", 0)
    waiting.assign(t0 + timedelta(seconds=5), "agent", 0)
    for seconds in (-1, 3_601):
        with pytest.raises(InvalidArgument) as err:
            make_task("ready").assign(t0, "agent", seconds)
        assert err.value.field == "lease_seconds"
    with pytest.raises(InvalidArgument):
        make_task("ready").assign(t0, "", 0)


def test_stale_token_and_expired_lease_are_refused(make_task: MakeTask, t0: datetime) -> None:
    task = make_task("assigned")
    with pytest.raises(FailedPrecondition, match="stale"):
        task.start(t0, 2)
    with pytest.raises(FailedPrecondition, match="stale"):
        task.start(t0, 0)
    with pytest.raises(FailedPrecondition, match="expired"):
        task.start(t0 + timedelta(hours=2), 1)
    assert status(task) is S.ASSIGNED and task.version == 1
    task.start(t0, 1)
    assert status(task) is S.IN_PROGRESS and task.started_at == t0
    assert task.assigned_agent_id == "agent-1"


def test_start_may_set_the_workers_own_lease(make_task: MakeTask, t0: datetime) -> None:
    task = make_task("assigned")
    assigned_until = task.lease_expires_at
    with pytest.raises(InvalidArgument, match="lease_seconds"):
        task.start(t0, 1, lease_seconds=-5)
    assert status(task) is S.ASSIGNED and task.lease_expires_at == assigned_until
    task.start(t0, 1, lease_seconds=30)
    assert status(task) is S.IN_PROGRESS and task.lease_expires_at == t0 + timedelta(seconds=30)
    kept = make_task("assigned")
    before = kept.lease_expires_at
    kept.start(t0, 1)
    assert kept.lease_expires_at == before


def test_a_released_lease_is_lost_for_good(make_task: MakeTask, t0: datetime) -> None:
    task = make_task("in_progress")
    task.release(t0, 1, "worker restarting")
    with pytest.raises(FailedPrecondition, match="holds no lease"):
        task.complete(t0, 1, result=None, usage=Usage(), changes=None, finish_blockers=())


def test_complete_stores_the_outcome_and_ends_the_lease(make_task: MakeTask, t0: datetime) -> None:
    task = make_task("in_progress")
    task.complete(
        t0, 1, result={"ok": True}, usage=Usage(input_tokens=5), changes=None, finish_blockers=()
    )
    assert status(task) is S.COMPLETED and task.completed_at == t0
    assert task.result == {"ok": True} and task.usage.input_tokens == 5
    assert task.assigned_agent_id == "" and task.lease_expires_at is None
    assert [e.type for e in task.pull_events()] == [E.COMPLETED]


def test_approval_then_finish_hold(make_task: MakeTask, t0: datetime) -> None:
    task = make_task("in_progress", requires_approval=True)
    task.complete(t0, 1, result={}, usage=Usage(), changes=None, finish_blockers=())
    assert task.awaiting_approval and task.status_reason == "awaiting approval"
    with pytest.raises(FailedPrecondition, match="awaiting approval"):
        task.resume(t0)
    task.approve(t0, "ana", "looks right", finish_blockers=['"Schema" [x] to finish'])
    assert status(task) is S.BLOCKED and task.hold is Hold.FINISH
    assert "Schema" in task.status_reason and task.reviews[0].approved
    task.release_hold(t0)
    assert status(task) is S.COMPLETED and not task.awaiting_approval
    assert (task.hold, task.status_reason) == (Hold.NONE, "finish dependencies met")
    assert [e.type for e in task.pull_events()] == [E.AWAITING_APPROVAL, E.HELD, E.COMPLETED]


def test_reject_sends_it_back_with_the_comment(make_task: MakeTask, t0: datetime) -> None:
    task = make_task("blocked", description="Write it.")
    task.hold = Hold.APPROVAL
    with pytest.raises(InvalidArgument) as err:
        task.reject(t0, "ana", " ")
    assert err.value.field == "comment"
    task.reject(t0, "ana", "Handle empty input.")
    assert status(task) is S.READY and not task.reviews[0].approved
    assert task.description.endswith("Reviewer feedback (ana): Handle empty input.")


def test_retries_back_off_then_fail_for_good(make_task: MakeTask, t0: datetime) -> None:
    task = make_task("in_progress")
    assert task.fail(t0, 1, "flaky", retryable=True, usage=Usage()) is True
    assert status(task) is S.READY and task.attempt_count == 1
    assert task.next_attempt_at == t0 + timedelta(seconds=10)
    assert task.failed_agent_ids == ["agent-1"] and task.error == "flaky"
    later = t0 + timedelta(seconds=10)
    task.assign(later, "agent-2", 0)
    assert task.next_attempt_at is None
    assert task.fail(later, 2, "flaky", retryable=True, usage=Usage()) is True
    assert task.next_attempt_at == later + timedelta(seconds=20)
    assert task.failed_agent_ids == ["agent-1", "agent-2"]
    task.assign(later + timedelta(seconds=20), "agent-3", 0)
    assert (
        task.fail(later + timedelta(seconds=20), 3, "again", retryable=True, usage=Usage()) is False
    )
    assert status(task) is S.FAILED and task.attempt_count == 3
    assert "all 3 attempts used" in task.status_reason


def test_a_non_retryable_failure_is_final(make_task: MakeTask, t0: datetime) -> None:
    task = make_task("assigned")
    assert task.fail(t0, 1, "bad input", retryable=False, usage=Usage()) is False
    assert status(task) is S.FAILED and "not retryable" in task.status_reason
    with pytest.raises(InvalidArgument):
        make_task("assigned").fail(t0, 1, "", retryable=False, usage=Usage())


def test_renew_extends_without_a_version(make_task: MakeTask, t0: datetime) -> None:
    task = make_task("in_progress")
    expires = task.renew(t0 + timedelta(minutes=30), 1, 600)
    assert expires == t0 + timedelta(minutes=40) and task.lease_expires_at == expires
    assert task.version == 1 and task.pull_events() == []


def test_lease_expiry_is_its_own_event(make_task: MakeTask, t0: datetime) -> None:
    task = make_task("assigned")
    task.release(t0 + timedelta(hours=2), 0, expired=True, actor="lease-reaper")
    [event] = task.pull_events()
    assert event.type is E.LEASE_EXPIRED and status(task) is S.READY and task.attempt_count == 0


def test_block_and_pause_revoke_the_lease(make_task: MakeTask, t0: datetime) -> None:
    blocked = make_task("in_progress")
    blocked.block(t0, "", actor="ops")
    assert blocked.hold == Hold.MANUAL and blocked.status_reason == "blocked by ops"
    assert blocked.assigned_agent_id == ""
    blocked.resume(t0)
    assert (status(blocked), blocked.status_reason) == (S.PENDING, "")
    paused = make_task("assigned")
    paused.pause(t0, "lunch")
    assert paused.lease_expires_at is None and paused.fencing_token == 1


def test_dependencies_change_the_successor(make_task: MakeTask, t0: datetime) -> None:
    task = make_task("ready")
    edge = Dependency("p", task.id, DependencyType.START_TO_START, 0.5, t0)
    task.add_dependency(t0, edge)
    assert task.dependencies == [edge]
    task.remove_dependency(t0, "p")
    assert task.dependencies == []
    with pytest.raises(NotFound):
        task.remove_dependency(t0, "p")
    events = task.pull_events()
    assert [e.type for e in events] == [E.DEPENDENCY_ADDED, E.DEPENDENCY_REMOVED]
    assert [e.version for e in events] == [2, 3] and events[0].dependency == edge
    with pytest.raises(FailedPrecondition):
        make_task("completed").add_dependency(t0, edge)


def test_unroutable_reason_is_recorded_once(make_task: MakeTask, t0: datetime) -> None:
    task = make_task("ready")
    assert task.note_unroutable(t0, "no agent holds SECURITY_AUDIT")
    assert not task.note_unroutable(t0, "no agent holds SECURITY_AUDIT")
    assert status(task) is S.READY and task.status_reason == "no agent holds SECURITY_AUDIT"
    assert [e.type for e in task.pull_events()] == [E.WAITING_FOR_AGENT]


def test_capabilities_are_deduplicated(t0: datetime) -> None:
    task = Task.create(
        now=t0, session_id="s", title="x", required_capabilities=["testing", Capability.TESTING]
    )
    assert task.required_capabilities == [Capability.TESTING]


def test_a_repeated_start_by_the_lease_holder_changes_nothing(
    make_task: MakeTask, t0: datetime
) -> None:
    task = make_task("assigned")
    task.start(t0, 1, lease_seconds=30)
    task.pull_events()
    version, until = task.version, task.lease_expires_at
    # Its first answer lost, the worker asks again with the same token: already started.
    task.start(t0 + timedelta(seconds=1), 1, lease_seconds=30)
    assert status(task) is S.IN_PROGRESS and task.version == version
    assert task.started_at == t0 and task.lease_expires_at == until and task.pull_events() == []
    with pytest.raises(FailedPrecondition, match="stale"):
        task.start(t0, 2)
