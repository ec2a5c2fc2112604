"""Reopening a retried session's work: the rule on one task, and what the scheduler's pure
rules make of a reopened graph (completed work stays done, the rest runs again)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from orchestrator.common.errors import FailedPrecondition
from orchestrator.task.domain import (
    DEAD_STATUSES,
    Hold,
    Peer,
    Step,
    Task,
    TaskEventType,
    TaskStatus,
    apply,
    decide,
)
from orchestrator.task.reopen import reopen_tasks

MakeTask = Callable[..., Task]
S = TaskStatus


def _ran_and_failed(task: Task, t0: datetime) -> None:
    """What runs that ended badly leave on a task (set apart so checks after `reopen` are
    not narrowed by the assignments)."""
    task.attempt_count, task.error, task.fencing_token = 2, "exit code 1", 4
    task.next_attempt_at = t0 + timedelta(minutes=1)
    task.failed_agent_ids = ["agent-1"]
    task.result = {"exit_code": 1}
    task.started_at = task.completed_at = task.assigned_at = t0
    task.usage = type(task.usage)(input_tokens=40)


@pytest.mark.parametrize("status", sorted(DEAD_STATUSES))
def test_a_task_that_ended_without_completing_reopens_as_pending(
    make_task: MakeTask, t0: datetime, status: TaskStatus
) -> None:
    task = make_task(status, max_attempts=2)
    _ran_and_failed(task, t0)
    later = t0 + timedelta(minutes=5)

    task.reopen(later, "reopened for retry 1", actor="choreography")

    assert (task.status, task.status_reason, task.version) == (S.PENDING, "reopened for retry 1", 2)
    assert (task.attempt_count, task.next_attempt_at, task.failed_agent_ids) == (0, None, [])
    assert (task.error, task.result, task.changes) == ("", None, None)
    assert task.started_at is task.completed_at is task.assigned_at is None
    assert task.status_updated_at == task.updated_at == later
    assert task.fencing_token == 4, "old leases stay stale"
    assert task.usage.input_tokens == 40, "what the runs cost was spent"
    [event] = task.pull_events()
    assert (event.type, event.previous_status, event.status) == (
        TaskEventType.REOPENED,
        status,
        S.PENDING,
    )
    assert (event.reason, event.actor, event.version) == ("reopened for retry 1", "choreography", 2)


@pytest.mark.parametrize("status", sorted(set(S) - DEAD_STATUSES))
def test_only_failed_cancelled_or_skipped_tasks_reopen(
    make_task: MakeTask, t0: datetime, status: TaskStatus
) -> None:
    task = make_task(status)
    with pytest.raises(FailedPrecondition, match="only failed, cancelled or skipped"):
        task.reopen(t0, "retry")
    assert task.status is status and task.version == 1 and not task.pull_events()


def test_a_reopened_task_loses_a_finish_hold(make_task: MakeTask, t0: datetime) -> None:
    task = make_task("skipped")
    task.hold = Hold.FINISH
    task.reopen(t0, "retry")
    assert task.hold is Hold.NONE


def test_reopen_tasks_reopens_the_dead_and_leaves_the_rest(
    make_task: MakeTask, t0: datetime
) -> None:
    tasks = [make_task(s, title=f"t-{s}") for s in S]
    changed = reopen_tasks(tasks, t0, "retry 1", "choreography")
    assert sorted(t.title for t, _ in changed) == sorted(f"t-{s}" for s in DEAD_STATUSES)
    assert all(read == 1 and t.version == 2 for t, read in changed)
    untouched = [t for t in tasks if t.title not in {c.title for c, _ in changed}]
    assert all(t.version == 1 for t in untouched)
    assert [t.status for t in untouched] == [s for s in S if s not in DEAD_STATUSES]


def _settle(tasks: list[Task], now: datetime) -> None:
    """What the cascade does, without a database: decide every task until nothing moves."""
    peers = {t.id: Peer.of(t) for t in tasks}
    for _ in range(10):
        moved = False
        for task in tasks:
            verdict = decide(task, peers, [peers[c] for c in task.child_ids])
            if verdict.step is not Step.KEEP:
                apply(task, verdict, now, peers)
                peers[task.id] = Peer.of(task)
                moved = True
        if not moved:
            return
    raise AssertionError("the graph did not settle")


def test_a_reopened_graph_runs_again_from_the_failed_step(
    make_task: MakeTask, t0: datetime
) -> None:
    """root → 1 (completed) → 2 (failed) → 3 (skipped); the root failed for it."""
    root = make_task("failed", title="root")
    one = make_task("completed", title="one", parent_id=root.id)
    one.started_at = one.completed_at = t0
    two = make_task("failed", title="two", parent_id=root.id, depends_on=[one.id])
    three = make_task("skipped", title="three", parent_id=root.id, depends_on=[two.id])
    root.child_ids = [one.id, two.id, three.id]
    graph = [root, one, two, three]

    changed = reopen_tasks(graph, t0, "retry 1", "choreography")
    _settle(graph, t0 + timedelta(seconds=1))

    assert [t.title for t, _ in changed] == ["root", "two", "three"]
    # The root is under way again (a subtask of it ran), the failed step is ready, its
    # dependant waits for it, and the completed step is left alone.
    assert [t.status for t in graph] == [S.IN_PROGRESS, S.COMPLETED, S.READY, S.PENDING]
    assert one.version == 1 and not one.pull_events()


def test_reopening_only_one_task_would_see_it_skipped_again(
    make_task: MakeTask, t0: datetime
) -> None:
    """Why the whole session is reopened at once: a task whose parent is still failed is
    skipped by the scheduler straight away."""
    root = make_task("failed", title="root")
    two = make_task("failed", title="two", parent_id=root.id)
    root.child_ids = [two.id]
    two.reopen(t0, "alone")
    verdict = decide(two, {root.id: Peer.of(root), two.id: Peer.of(two)})
    assert verdict.step is Step.SKIP
