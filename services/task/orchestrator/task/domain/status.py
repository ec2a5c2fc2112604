"""The task status machine: SPEC §2's states and every transition allowed between them."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from orchestrator.common.errors import FailedPrecondition


class TaskStatus(StrEnum):
    """Values are the proto names without the `TASK_STATUS_` prefix, lower-cased."""

    PENDING = "pending"
    READY = "ready"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    BLOCKED = "blocked"
    PAUSED = "paused"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


_S = TaskStatus

TRANSITIONS: dict[TaskStatus, tuple[TaskStatus, ...]] = {
    # READY when its dependencies allow it (the scheduler decides, never a caller).
    _S.PENDING: (_S.READY, _S.BLOCKED, _S.PAUSED, _S.CANCELLED, _S.SKIPPED),
    # PENDING again when it gains an unmet dependency; IN_PROGRESS directly only for a parent,
    # whose first subtask started (a leaf goes through ASSIGNED).
    _S.READY: (
        _S.PENDING,
        _S.ASSIGNED,
        _S.IN_PROGRESS,
        _S.BLOCKED,
        _S.PAUSED,
        _S.CANCELLED,
        _S.SKIPPED,
    ),
    # READY again on a retry, a release or a lost lease; FAILED when no attempt is left.
    _S.ASSIGNED: (
        _S.IN_PROGRESS,
        _S.READY,
        _S.FAILED,
        _S.BLOCKED,
        _S.PAUSED,
        _S.CANCELLED,
    ),
    # BLOCKED also when it finished but awaits approval or a finish dependency.
    _S.IN_PROGRESS: (
        _S.COMPLETED,
        _S.BLOCKED,
        _S.READY,
        _S.FAILED,
        _S.PAUSED,
        _S.CANCELLED,
    ),
    # PENDING or READY on resume (as dependencies allow), READY on reject, COMPLETED on approve
    # or when the finish dependency it waited for is met.
    _S.BLOCKED: (_S.PENDING, _S.READY, _S.COMPLETED, _S.CANCELLED, _S.SKIPPED),
    _S.PAUSED: (_S.PENDING, _S.READY, _S.CANCELLED, _S.SKIPPED),
    _S.COMPLETED: (),
    _S.FAILED: (),
    _S.CANCELLED: (),
    _S.SKIPPED: (),
}

TERMINAL_STATUSES: frozenset[TaskStatus] = frozenset(
    status for status, targets in TRANSITIONS.items() if not targets
)
"""COMPLETED, FAILED, CANCELLED, SKIPPED."""

LEASED_STATUSES: frozenset[TaskStatus] = frozenset({_S.ASSIGNED, _S.IN_PROGRESS})
"""An agent holds the task's lease: the worker's calls must present the fencing token."""

DEAD_STATUSES: frozenset[TaskStatus] = frozenset({_S.FAILED, _S.CANCELLED, _S.SKIPPED})
"""Ended without completing: a dependency on such a task can never be met."""

SCHEDULABLE_STATUSES: frozenset[TaskStatus] = frozenset({_S.PENDING, _S.READY})
"""The scheduler moves these between each other as dependencies come and go."""

SKIPPABLE_STATUSES: frozenset[TaskStatus] = frozenset({_S.PENDING, _S.READY, _S.BLOCKED, _S.PAUSED})
"""Not running and not ended: SkipTask and the dependency-failure cascade apply to these."""


def can_transition(current: TaskStatus, target: TaskStatus) -> bool:
    return target in TRANSITIONS[current]


def ensure_transition(task_id: str, current: TaskStatus, target: TaskStatus) -> None:
    """Raises FailedPrecondition naming both states and what `current` does allow."""
    if can_transition(current, target):
        return
    raise FailedPrecondition(
        f"task {task_id} is {current}; it cannot go to {target} "
        f"(allowed from {current}: {_names(TRANSITIONS[current])})"
    )


def _names(statuses: Iterable[TaskStatus]) -> str:
    return ", ".join(statuses) or "none"
