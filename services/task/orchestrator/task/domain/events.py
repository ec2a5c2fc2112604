"""Domain events a task records as it changes; the service queues them with the change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .dependency import Dependency
from .status import TaskStatus


class TaskEventType(StrEnum):
    """`<aggregate>.<event>`, the `type` of the envelope on the event stream.

    Every entry into COMPLETED is `task.completed` (an approval and a released finish hold
    included) and every entry into READY after a run is named by its cause, so a consumer
    can count outcomes by type alone.
    """

    CREATED = "task.created"
    READY = "task.ready"
    # Back to PENDING: it gained an unmet dependency, or its parent stopped being ready.
    PENDING = "task.pending"
    DECOMPOSED = "task.decomposed"
    DEPENDENCY_ADDED = "task.dependency_added"
    DEPENDENCY_REMOVED = "task.dependency_removed"
    # Routing found no agent: the task waits READY with the reason.
    WAITING_FOR_AGENT = "task.waiting_for_agent"
    ASSIGNED = "task.assigned"
    STARTED = "task.started"
    COMPLETED = "task.completed"
    AWAITING_APPROVAL = "task.awaiting_approval"
    # Finished, but a finish dependency is not met yet.
    HELD = "task.held"
    FAILED = "task.failed"
    RETRY_SCHEDULED = "task.retry_scheduled"
    RELEASED = "task.released"
    LEASE_EXPIRED = "task.lease_expired"
    BLOCKED = "task.blocked"
    PAUSED = "task.paused"
    RESUMED = "task.resumed"
    CANCELLED = "task.cancelled"
    SKIPPED = "task.skipped"
    REJECTED = "task.rejected"
    # Back to PENDING from FAILED, CANCELLED or SKIPPED: its retried session runs it again.
    REOPENED = "task.reopened"


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """One change to one task. `version` is the task's version after it; `previous_status`
    is None when the status did not change."""

    type: TaskEventType
    task_id: str
    session_id: str
    version: int
    occurred_at: datetime
    status: TaskStatus
    previous_status: TaskStatus | None = None
    reason: str = ""
    actor: str = ""
    dependency: Dependency | None = None
