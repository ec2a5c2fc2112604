"""The status machine against SPEC §2 and task.proto, written out here rather than read from
the code, and every verb tried from every status."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from orchestrator.common.errors import FailedPrecondition
from orchestrator.task.domain import (
    TERMINAL_STATUSES,
    TRANSITIONS,
    Hold,
    Task,
    TaskStatus,
    Usage,
    can_transition,
)

MakeTask = Callable[..., Task]
ALL = [s.value for s in TaskStatus]

EXPECTED: dict[str, set[str]] = {
    "pending": {"ready", "blocked", "paused", "cancelled", "skipped"},
    "ready": {"pending", "assigned", "in_progress", "blocked", "paused", "cancelled", "skipped"},
    "assigned": {"in_progress", "ready", "failed", "blocked", "paused", "cancelled"},
    "in_progress": {"completed", "blocked", "ready", "failed", "paused", "cancelled"},
    "blocked": {"pending", "ready", "completed", "cancelled", "skipped"},
    "paused": {"pending", "ready", "cancelled", "skipped"},
    "completed": set(),
    "failed": set(),
    "cancelled": set(),
    "skipped": set(),
}


def test_the_table_is_the_spec() -> None:
    assert {k.value: {t.value for t in v} for k, v in TRANSITIONS.items()} == EXPECTED
    assert {s.value for s in TERMINAL_STATUSES} == {"completed", "failed", "cancelled", "skipped"}


@pytest.mark.parametrize("source", ALL)
@pytest.mark.parametrize("target", ALL)
def test_can_transition_matches_every_pair(source: str, target: str) -> None:
    assert can_transition(TaskStatus(source), TaskStatus(target)) is (target in EXPECTED[source])


def _later(t0: datetime) -> datetime:
    return t0 + timedelta(minutes=1)


# Each verb as callers use it, with the statuses it accepts.
VERBS: dict[str, tuple[Callable[[Task, datetime], object], set[str]]] = {
    "assign": (lambda t, now: t.assign(now, "agent-2", 0), {"ready"}),
    "start": (lambda t, now: t.start(now, 1), {"assigned"}),
    "complete": (
        lambda t, now: t.complete(
            now, 1, result=None, usage=Usage(), changes=None, finish_blockers=()
        ),
        {"in_progress"},
    ),
    "fail": (
        lambda t, now: t.fail(now, 1, "boom", retryable=False, usage=Usage()),
        {"assigned", "in_progress"},
    ),
    "release": (lambda t, now: t.release(now, 0), {"assigned", "in_progress"}),
    "block": (lambda t, now: t.block(now, "wait"), {"pending", "ready", "assigned", "in_progress"}),
    "pause": (lambda t, now: t.pause(now), {"pending", "ready", "assigned", "in_progress"}),
    "resume": (lambda t, now: t.resume(now), {"paused", "blocked"}),
    "cancel": (
        lambda t, now: t.cancel(now),
        {"pending", "ready", "assigned", "in_progress", "blocked", "paused"},
    ),
    "skip": (lambda t, now: t.skip(now), {"pending", "ready", "blocked", "paused"}),
}


# The lease holder repeating itself (its first answer lost): told yes, and nothing changes.
REPEATS = {("start", "in_progress")}


@pytest.mark.parametrize("verb", sorted(VERBS))
@pytest.mark.parametrize("status", ALL)
def test_each_verb_from_each_status(
    make_task: MakeTask, t0: datetime, verb: str, status: str
) -> None:
    action, allowed = VERBS[verb]
    task = make_task(status)
    if status == "blocked":
        task.hold = Hold.MANUAL
    before = (task.status, task.version)
    if (verb, status) in REPEATS:
        action(task, _later(t0))
        assert (task.status, task.version) == before and task.pull_events() == []
    elif status in allowed:
        action(task, _later(t0))
        assert task.version == before[1] + 1
        assert len(task.pull_events()) == 1
    else:
        with pytest.raises(FailedPrecondition):
            action(task, _later(t0))
        assert (task.status, task.version) == before
        assert task.pull_events() == []


def test_the_open_subtask_predicate_lists_every_terminal_status() -> None:
    # The repository spells the statuses out (so the planner uses the partial index on open
    # subtasks); a new terminal status must be added there and to the index.
    from orchestrator.task.domain import TERMINAL_STATUSES
    from orchestrator.task.repository import OPEN_CHILD

    listed = OPEN_CHILD.removeprefix("status NOT IN (").removesuffix(")").split(", ")
    assert {v.strip("'") for v in listed} == {s.value for s in TERMINAL_STATUSES}
