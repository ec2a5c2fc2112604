"""Builders for tasks, graph rows and dependencies; a stored task is rebuilt the same way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator.task.domain import (
    Dependency,
    DependencyType,
    Estimate,
    GraphTask,
    Hold,
    Task,
    TaskPriority,
    TaskStatus,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SESSION = "5e55a000-0000-4000-8000-000000000001"


def node(
    ident: str,
    estimate: tuple[float, float, float] = (1.0, 1.0, 1.0),
    *,
    status: TaskStatus | str = TaskStatus.PENDING,
    priority: TaskPriority | str = TaskPriority.NORMAL,
    parent: str | None = None,
    order: int = 0,
    hold: Hold = Hold.NONE,
) -> GraphTask:
    e = Estimate(*estimate)
    return GraphTask(
        id=ident,
        parent_id=parent,
        title=f"task {ident}",
        status=TaskStatus(status),
        priority=TaskPriority(priority),
        expected_hours=e.expected_hours,
        sigma_hours=e.sigma_hours,
        order=order,
        hold=hold,
    )


def dep(
    predecessor: str,
    successor: str,
    kind: DependencyType | str = DependencyType.FINISH_TO_START,
    lag: float | None = None,
) -> Dependency:
    return Dependency(predecessor, successor, DependencyType(kind), lag, T0)


@pytest.fixture
def t0() -> datetime:
    return T0


@pytest.fixture
def make_task() -> Callable[..., Task]:
    """A task as `Task.create` makes it, then put in `status` the way a stored one would be."""

    def make(status: TaskStatus | str = "pending", **fields: Any) -> Task:
        fields.setdefault("session_id", SESSION)
        fields.setdefault("title", "Write the parser")
        task = Task.create(now=T0, **fields)
        task.status = TaskStatus(status)
        if task.status in (TaskStatus.ASSIGNED, TaskStatus.IN_PROGRESS):
            task.assigned_agent_id = "agent-1"
            task.fencing_token = 1
            task.lease_expires_at = T0.replace(hour=13)
        if task.status is TaskStatus.IN_PROGRESS:
            task.started_at = T0
        task.pull_events()
        return task

    return make
