"""The scheduler's decisions: readiness, the skip cascade, finish holds and parent roll-up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from orchestrator.task.domain import (
    Dependency,
    DependencyType,
    Hold,
    Peer,
    Step,
    Task,
    TaskEventType,
    TaskStatus,
    apply,
    decide,
)

MakeTask = Callable[..., Task]
S = TaskStatus
PRED = "0b6e7f0e-0000-4000-8000-0000000000aa"
PARENT = "0b6e7f0e-0000-4000-8000-0000000000bb"


def peer(
    status: str,
    *,
    ident: str = PRED,
    started: datetime | None = None,
    completed: datetime | None = None,
) -> dict[str, Peer]:
    return {ident: Peer(ident, "Design", S(status), None, started, completed)}


def waiting_on(
    make_task: MakeTask,
    status: str = "pending",
    kind: str = "finish_to_start",
    lag: float | None = None,
) -> Task:
    task = make_task(status)
    edge = Dependency(PRED, task.id, DependencyType(kind), lag, task.created_at)
    task.dependencies = [edge]
    return task


def test_no_dependency_means_ready(make_task: MakeTask) -> None:
    assert decide(make_task(), {}).step is Step.READY


def test_finish_to_start_waits_for_completion(make_task: MakeTask, t0: datetime) -> None:
    task = waiting_on(make_task)
    assert decide(task, peer("in_progress", started=t0)).step is Step.KEEP
    assert decide(task, peer("completed", started=t0, completed=t0)).step is Step.READY


def test_a_ready_task_that_gains_an_unmet_dependency_goes_back(make_task: MakeTask) -> None:
    verdict = decide(waiting_on(make_task, "ready"), peer("ready"))
    assert verdict.step is Step.PENDING
    assert verdict.reason == f'waits for "Design" [{PRED}] to finish'


def test_start_to_start_waits_for_a_start(make_task: MakeTask, t0: datetime) -> None:
    task = waiting_on(make_task, kind="start_to_start")
    assert decide(task, peer("assigned")).step is Step.KEEP
    assert decide(task, peer("in_progress", started=t0)).step is Step.READY
    # Started then cancelled: the start happened, so the dependency holds.
    assert decide(task, peer("cancelled", started=t0)).step is Step.READY
    assert decide(task, peer("cancelled")).step is Step.SKIP


def test_finish_dependencies_do_not_gate_the_start(make_task: MakeTask) -> None:
    for kind in ("finish_to_finish", "start_to_finish"):
        assert decide(waiting_on(make_task, kind=kind), peer("pending")).step is Step.READY


def test_a_failed_cancelled_or_skipped_predecessor_skips(make_task: MakeTask) -> None:
    for status, words in (
        ("failed", "failed"),
        ("cancelled", "was cancelled"),
        ("skipped", "was skipped"),
    ):
        for kind in ("finish_to_start", "finish_to_finish"):
            for mine in ("pending", "ready", "paused"):
                verdict = decide(waiting_on(make_task, mine, kind=kind), peer(status))
                assert verdict.step is Step.SKIP
                assert verdict.reason == f'dependency "Design" [{PRED}] {words}'


def test_running_and_approval_waiting_tasks_are_not_skipped(make_task: MakeTask) -> None:
    assert decide(waiting_on(make_task, "in_progress"), peer("failed")).step is Step.KEEP
    held = waiting_on(make_task, "blocked")
    held.hold = Hold.APPROVAL
    assert decide(held, peer("failed")).step is Step.KEEP
    manual = waiting_on(make_task, "blocked")
    manual.hold = Hold.MANUAL
    assert decide(manual, peer("failed")).step is Step.SKIP


def test_a_positive_lag_sets_not_before(make_task: MakeTask, t0: datetime) -> None:
    task = waiting_on(make_task, lag=2.0)
    verdict = decide(task, peer("completed", started=t0, completed=t0))
    assert verdict.step is Step.READY and verdict.not_before == t0 + timedelta(hours=2)
    apply(task, verdict, t0 + timedelta(minutes=5), {})
    assert task.status is S.READY and task.next_attempt_at == t0 + timedelta(hours=2)
    assert "lag" in task.status_reason
    lead = waiting_on(make_task, lag=-2.0)
    assert decide(lead, peer("completed", started=t0, completed=t0)).not_before is None


def test_the_parent_gates_its_subtasks(make_task: MakeTask) -> None:
    child = make_task(parent_id=PARENT, depth=1)
    assert decide(child, peer("pending", ident=PARENT)).step is Step.KEEP
    assert decide(child, peer("ready", ident=PARENT)).step is Step.READY
    assert decide(child, peer("in_progress", ident=PARENT)).step is Step.READY
    ready_child = make_task("ready", parent_id=PARENT, depth=1)
    verdict = decide(ready_child, peer("paused", ident=PARENT))
    assert verdict.step is Step.PENDING and "its parent" in verdict.reason


def test_a_cancelled_parent_cancels_even_running_subtasks(make_task: MakeTask) -> None:
    for status in ("pending", "in_progress", "assigned"):
        child = make_task(status, parent_id=PARENT, depth=1)
        assert decide(child, peer("cancelled", ident=PARENT)).step is Step.CANCEL
    done = make_task("completed", parent_id=PARENT, depth=1)
    assert decide(done, peer("cancelled", ident=PARENT)).step is Step.KEEP
    child = make_task(parent_id=PARENT, depth=1)
    assert decide(child, peer("skipped", ident=PARENT)).step is Step.SKIP


def test_a_finish_hold_is_released_when_met(make_task: MakeTask, t0: datetime) -> None:
    task = waiting_on(make_task, "blocked", kind="finish_to_finish")
    task.hold = Hold.FINISH
    assert decide(task, peer("in_progress", started=t0)).step is Step.KEEP
    verdict = decide(task, peer("completed", started=t0, completed=t0))
    assert verdict.step is Step.RELEASE_HOLD
    apply(task, verdict, t0, {})
    assert task.status is S.COMPLETED


def children(*statuses: str, started: bool = False, t0: datetime | None = None) -> list[Peer]:
    moment = t0 if started else None
    return [Peer(f"c{i}", f"child {i}", S(s), PARENT, moment) for i, s in enumerate(statuses)]


def parent_in(make_task: MakeTask, status: str) -> Task:
    task = make_task(status)
    task.child_ids = ["c0", "c1", "c2"]
    return task


def test_a_parent_starts_with_its_first_subtask(make_task: MakeTask, t0: datetime) -> None:
    parent = parent_in(make_task, "ready")
    assert decide(parent, {}, children("ready", "ready", "ready")).step is Step.KEEP
    verdict = decide(parent, {}, children("in_progress", "ready", "ready", started=True, t0=t0))
    assert verdict.step is Step.START
    apply(parent, verdict, t0, {})
    assert parent.status is S.IN_PROGRESS and parent.started_at == t0


def test_a_parent_completes_when_every_subtask_did(make_task: MakeTask, t0: datetime) -> None:
    parent = parent_in(make_task, "in_progress")
    assert (
        decide(
            parent, {}, children("completed", "in_progress", "completed", started=True, t0=t0)
        ).step
        is Step.KEEP
    )
    verdict = decide(
        parent, {}, children("completed", "completed", "completed", started=True, t0=t0)
    )
    assert verdict.step is Step.FINISH and verdict.reason == ""
    apply(parent, verdict, t0, {})
    assert parent.status is S.COMPLETED
    assert [e.type for e in parent.pull_events()] == [TaskEventType.COMPLETED]


def test_a_partial_parent_fails_saying_what_did_not_complete(
    make_task: MakeTask, t0: datetime
) -> None:
    parent = parent_in(make_task, "in_progress")
    verdict = decide(parent, {}, children("completed", "failed", "skipped", started=True, t0=t0))
    assert verdict.reason == "partial: 1 of 3 subtasks completed (1 failed, 1 skipped)"
    apply(parent, verdict, t0, {})
    assert parent.status is S.FAILED and parent.error == verdict.reason


def test_a_parent_none_of_whose_subtasks_ran_is_skipped(make_task: MakeTask) -> None:
    parent = parent_in(make_task, "ready")
    verdict = decide(parent, {}, children("cancelled", "skipped", "skipped"))
    assert verdict.step is Step.SKIP and verdict.reason == "none of its 3 subtasks ran"


def test_a_parent_waits_for_approval_when_asked(make_task: MakeTask, t0: datetime) -> None:
    parent = parent_in(make_task, "in_progress")
    parent.requires_approval = True
    apply(parent, decide(parent, {}, children("completed", started=True, t0=t0)), t0, {})
    assert parent.awaiting_approval
