"""The state of a task and the one way it changes: a validated transition, a version bump and
a recorded event. `TaskRun` and `Task` build the rules on top."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Self

from orchestrator.common.errors import FailedPrecondition

from .dependency import Dependency
from .estimate import Estimate
from .events import DomainEvent, TaskEventType
from .kinds import Capability, Hold, TaskComplexity, TaskPriority
from .outcome import Review, Usage, WorkspaceChanges
from .status import LEASED_STATUSES, TERMINAL_STATUSES, TaskStatus, ensure_transition
from .validation import DEFAULT_MAX_ATTEMPTS, as_utc

_S = TaskStatus
_E = TaskEventType


@dataclass(kw_only=True, slots=True)
class TaskState:
    """The fields of the `Task` proto message. `child_ids` and `dependencies` are rows of their
    own, filled in by the repository; `hold` says why a BLOCKED task is blocked."""

    id: str
    session_id: str
    parent_id: str | None = None
    child_ids: list[str] = field(default_factory=list)
    depth: int = 0
    title: str
    description: str = ""
    task_type: str = ""
    status: TaskStatus = _S.PENDING
    status_reason: str = ""
    status_updated_at: datetime
    priority: TaskPriority = TaskPriority.NORMAL
    complexity: TaskComplexity = TaskComplexity.MODERATE
    required_capabilities: list[Capability] = field(default_factory=list)
    technologies: list[str] = field(default_factory=list)
    estimate: Estimate
    dependencies: list[Dependency] = field(default_factory=list)
    input: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    assigned_agent_id: str = ""
    # The agent of the latest assignment; kept when the lease ends (see the proto).
    last_agent_id: str = ""
    lease_expires_at: datetime | None = None
    fencing_token: int = 0
    attempt_count: int = 0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    next_attempt_at: datetime | None = None
    failed_agent_ids: list[str] = field(default_factory=list)
    requires_approval: bool = False
    hold: Hold = Hold.NONE
    reviews: list[Review] = field(default_factory=list)
    result: dict[str, Any] | None = None
    changes: WorkspaceChanges | None = None
    error: str = ""
    usage: Usage = field(default_factory=Usage)
    created_by: str = ""
    version: int = 1
    created_at: datetime
    updated_at: datetime
    assigned_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    events: list[DomainEvent] = field(default_factory=list, compare=False, repr=False)

    def clone(self) -> Self:
        """A copy that shares nothing mutable with this one: its lists and dicts are copies
        (what they hold is immutable, or JSON the domain replaces rather than edits)."""
        twin = object.__new__(type(self))
        for name in _FIELDS:
            value = getattr(self, name)
            if type(value) is list:
                value = list(value)
            elif type(value) is dict:
                value = dict(value)
            setattr(twin, name, value)
        return twin

    @property
    def is_parent(self) -> bool:
        return bool(self.child_ids)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def awaiting_approval(self) -> bool:
        return self.status is _S.BLOCKED and self.hold is Hold.APPROVAL

    def pull_events(self) -> list[DomainEvent]:
        """The events recorded since the last pull, oldest first; the list is then emptied."""
        events, self.events = self.events, []
        return events

    def _await_approval(self, now: datetime, actor: str) -> None:
        why = "awaiting approval"
        self._transition(_S.BLOCKED, now, _E.AWAITING_APPROVAL, why, actor, Hold.APPROVAL)

    def _settle(self, now: datetime, blockers: Sequence[str], reason: str, actor: str) -> None:
        """Finished work completes, unless a finish dependency holds it BLOCKED."""
        if blockers:
            why = "waits for " + "; ".join(blockers)
            if self.status is _S.BLOCKED:
                moment = self._touch(now)
                self.hold, self.status_reason = Hold.FINISH, why
                self._record(_E.HELD, moment, reason=why, actor=actor)
                return
            self._transition(_S.BLOCKED, now, _E.HELD, why, actor, Hold.FINISH)
            return
        self._transition(_S.COMPLETED, now, _E.COMPLETED, reason, actor)

    def _only_from(self, sources: Iterable[TaskStatus], verb: str) -> None:
        allowed = tuple(sources)
        if self.status not in allowed:
            raise FailedPrecondition(
                f"task {self.id} is {self.status}; {verb} applies to {' or '.join(allowed)} tasks"
            )

    def _transition(
        self,
        target: TaskStatus,
        now: datetime,
        event: TaskEventType,
        reason: str = "",
        actor: str = "",
        hold: Hold = Hold.NONE,
    ) -> datetime:
        ensure_transition(self.id, self.status, target)
        moment = self._touch(now)
        previous, self.status = self.status, target
        self.status_updated_at, self.status_reason = moment, reason
        self.hold = hold if target is _S.BLOCKED else Hold.NONE
        if target not in LEASED_STATUSES:
            self.assigned_agent_id, self.lease_expires_at = "", None
        if target in TERMINAL_STATUSES:
            self.completed_at = moment
        self._record(event, moment, previous=previous, reason=reason, actor=actor)
        return moment

    def _touch(self, now: datetime) -> datetime:
        moment = as_utc(now)
        self.version += 1
        self.updated_at = moment
        return moment

    def _record(
        self,
        event: TaskEventType,
        moment: datetime,
        *,
        previous: TaskStatus | None = None,
        reason: str = "",
        actor: str = "",
        dependency: Dependency | None = None,
    ) -> None:
        self.events.append(
            DomainEvent(
                type=event,
                task_id=self.id,
                session_id=self.session_id,
                version=self.version,
                occurred_at=moment,
                status=self.status,
                previous_status=previous,
                reason=reason,
                actor=actor,
                dependency=dependency,
            )
        )


# Every field, in declaration order: what `clone` copies.
_FIELDS = tuple(f.name for f in fields(TaskState))
