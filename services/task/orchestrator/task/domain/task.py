"""The Task aggregate: one unit of work in a session's graph, its lease and its lifecycle."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from orchestrator.common.errors import FailedPrecondition, NotFound

from .dependency import Dependency
from .estimate import Estimate, complexity_of, default_estimate
from .events import TaskEventType
from .kinds import Capability, DependencyType, Hold, TaskComplexity, TaskPriority
from .outcome import Review
from .run import TaskRun
from .status import DEAD_STATUSES, LEASED_STATUSES, TaskStatus
from .validation import (
    as_utc,
    validate_depends_on,
    validate_description,
    validate_json_object,
    validate_max_attempts,
    validate_member,
    validate_required_text,
    validate_task_id,
    validate_task_type,
    validate_technologies,
    validate_title,
)

_S = TaskStatus
_E = TaskEventType


class Task(TaskRun):
    """A task as the domain sees it; its fields are TaskState's, its run rules TaskRun's.

    `create` makes a new, validated task; the constructor rebuilds a stored one. Every
    mutation takes `now` (the domain reads no clock), refuses before changing anything, then
    bumps `version` by one per recorded event.
    """

    __slots__ = ()

    @classmethod
    def create(
        cls,
        *,
        now: datetime,
        session_id: str,
        title: str,
        task_id: str | None = None,
        parent_id: str | None = None,
        depth: int = 0,
        description: str = "",
        task_type: str = "",
        priority: TaskPriority | str = TaskPriority.NORMAL,
        complexity: TaskComplexity | str | None = None,
        required_capabilities: Iterable[Capability | str] = (),
        technologies: Iterable[str] = (),
        estimate: Estimate | None = None,
        depends_on: Iterable[str] = (),
        input: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        max_attempts: int = 0,
        requires_approval: bool = False,
        created_by: str = "",
    ) -> Task:
        """A PENDING task at version 1 with a `task.created` event; empty id → uuid4.

        Without an estimate it takes its complexity's default; without a complexity it takes
        the band of its estimate (MODERATE when neither is given).
        """
        moment = as_utc(now)
        ident = validate_task_id(task_id)
        level = validate_member(TaskComplexity, complexity, "complexity") if complexity else None
        effort = estimate or default_estimate(level or TaskComplexity.MODERATE)
        task = cls(
            id=ident,
            session_id=session_id,
            parent_id=parent_id,
            depth=depth,
            title=validate_title(title),
            description=validate_description(description),
            task_type=validate_task_type(task_type),
            status_updated_at=moment,
            priority=validate_member(TaskPriority, priority, "priority"),
            complexity=level or complexity_of(effort.expected_hours),
            required_capabilities=list(
                dict.fromkeys(
                    validate_member(Capability, c, "required_capabilities")
                    for c in required_capabilities
                )
            ),
            technologies=validate_technologies(technologies),
            estimate=effort,
            input=validate_json_object(input, "input"),
            metadata=validate_json_object(metadata, "metadata"),
            max_attempts=validate_max_attempts(max_attempts),
            requires_approval=requires_approval,
            created_by=created_by,
            created_at=moment,
            updated_at=moment,
        )
        task.dependencies = [
            Dependency(p, ident, DependencyType.FINISH_TO_START, None, moment)
            for p in validate_depends_on(depends_on, ident)
        ]
        task._record(_E.CREATED, moment, actor=created_by)
        return task

    # Planning: decomposition and dependencies.

    def decompose(self, now: datetime, child_ids: Sequence[str], *, actor: str = "") -> None:
        """Makes this task a parent; only a PENDING or READY task without subtasks splits."""
        if self.is_parent:
            raise FailedPrecondition(
                f"task {self.id} is already decomposed into {len(self.child_ids)} subtasks"
            )
        if self.status not in (_S.PENDING, _S.READY):
            raise FailedPrecondition(
                f"task {self.id} is {self.status}; only pending or ready tasks are decomposed"
            )
        moment = self._touch(now)
        self.child_ids = list(child_ids)
        reason = f"split into {len(child_ids)} subtasks"
        self._record(_E.DECOMPOSED, moment, reason=reason, actor=actor)

    def add_dependency(self, now: datetime, dependency: Dependency, *, actor: str = "") -> None:
        if self.is_terminal:
            raise FailedPrecondition(f"task {self.id} is {self.status}; it takes no dependency")
        moment = self._touch(now)
        self.dependencies.append(dependency)
        self._record(_E.DEPENDENCY_ADDED, moment, actor=actor, dependency=dependency)

    def remove_dependency(self, now: datetime, predecessor_id: str, *, actor: str = "") -> None:
        found = next((d for d in self.dependencies if d.predecessor_id == predecessor_id), None)
        if found is None:
            raise NotFound(f"task {self.id} does not depend on task {predecessor_id}")
        moment = self._touch(now)
        self.dependencies.remove(found)
        self._record(_E.DEPENDENCY_REMOVED, moment, actor=actor, dependency=found)

    # Scheduling: what the scheduler decides from the states of other tasks.

    def become_ready(self, now: datetime, not_before: datetime | None = None) -> None:
        """PENDING → READY; a positive lag makes it wait until `not_before` to be assigned."""
        moment = self._transition(_S.READY, now, _E.READY, actor="scheduler")
        if not_before is not None and not_before > moment:
            self.next_attempt_at = max(not_before, self.next_attempt_at or not_before)
            self.status_reason = f"a dependency's lag runs until {not_before.isoformat()}"

    def become_pending(self, now: datetime, reason: str) -> None:
        self._transition(_S.PENDING, now, _E.PENDING, reason=reason, actor="scheduler")

    def note_unroutable(self, now: datetime, reason: str) -> bool:
        """A READY task no agent can take keeps waiting and says why; False if it said so."""
        if self.status is not _S.READY or self.status_reason == reason:
            return False
        moment = self._touch(now)
        self.status_reason = reason
        self._record(_E.WAITING_FOR_AGENT, moment, reason=reason, actor="scheduler")
        return True

    def start_rollup(self, now: datetime) -> None:
        """A READY parent whose first subtask started is IN_PROGRESS."""
        moment = self._transition(_S.IN_PROGRESS, now, _E.STARTED, reason="a subtask started")
        self.started_at = moment

    def finish_rollup(self, now: datetime, shortfall: str, finish_blockers: Sequence[str]) -> None:
        """An IN_PROGRESS parent whose subtasks all ended: it completes when they all completed,
        and fails otherwise, `shortfall` saying which did not."""
        self._only_from((_S.IN_PROGRESS,), "finish a parent")
        if shortfall:
            self._transition(_S.FAILED, now, _E.FAILED, reason=shortfall, actor="scheduler")
            self.error = shortfall
        elif self.requires_approval:
            self._await_approval(now, "scheduler")
        else:
            self._settle(now, finish_blockers, "every subtask completed", "scheduler")

    def release_hold(self, now: datetime) -> None:
        """The finish dependency a finished task waited for is met: it completes."""
        if self.hold is not Hold.FINISH:
            raise FailedPrecondition(f"task {self.id} is not waiting on a finish dependency")
        self._transition(_S.COMPLETED, now, _E.COMPLETED, reason="finish dependencies met")

    # Control: people and services steering the task.

    def block(self, now: datetime, reason: str = "", *, actor: str = "") -> None:
        self._only_from((_S.PENDING, _S.READY, *LEASED_STATUSES), "block")
        why = reason or f"blocked by {actor or 'request'}"
        self._transition(_S.BLOCKED, now, _E.BLOCKED, why, actor, Hold.MANUAL)

    def pause(self, now: datetime, reason: str = "", *, actor: str = "") -> None:
        self._only_from((_S.PENDING, _S.READY, *LEASED_STATUSES), "pause")
        self._transition(_S.PAUSED, now, _E.PAUSED, reason, actor)

    def resume(self, now: datetime, *, actor: str = "") -> None:
        """PAUSED or BLOCKED (by request) → PENDING; the scheduler makes it READY if it may."""
        if self.status is _S.BLOCKED and self.hold is not Hold.MANUAL:
            waits = "approval" if self.hold is Hold.APPROVAL else "a finish dependency"
            raise FailedPrecondition(f"task {self.id} is blocked awaiting {waits}, not by request")
        self._only_from((_S.PAUSED, _S.BLOCKED), "resume")
        self._transition(_S.PENDING, now, _E.RESUMED, actor=actor)

    def cancel(self, now: datetime, reason: str = "", *, actor: str = "") -> None:
        self._transition(_S.CANCELLED, now, _E.CANCELLED, reason, actor)

    def skip(self, now: datetime, reason: str = "", *, actor: str = "") -> None:
        self._only_from((_S.PENDING, _S.READY, _S.BLOCKED, _S.PAUSED), "skip")
        self._transition(_S.SKIPPED, now, _E.SKIPPED, reason, actor)

    def approve(
        self, now: datetime, reviewer: str, comment: str, finish_blockers: Sequence[str]
    ) -> None:
        self._ensure_awaiting_approval()
        self.reviews.append(Review(True, reviewer, comment, as_utc(now)))
        self._settle(now, finish_blockers, f"approved by {reviewer or 'a reviewer'}", reviewer)

    def reject(self, now: datetime, reviewer: str, comment: str) -> None:
        """Back to READY; the comment joins the description, the prompt of the next run."""
        validate_required_text(comment, "comment", "say what the agent must change")
        self._ensure_awaiting_approval()
        moment = self._transition(_S.READY, now, _E.REJECTED, comment, reviewer)
        self.reviews.append(Review(False, reviewer, comment, moment))
        self.description += f"\n\nReviewer feedback ({reviewer or 'reviewer'}): {comment}"
        self.result, self.changes = None, None

    def reopen(self, now: datetime, reason: str, *, actor: str = "") -> None:
        """FAILED, CANCELLED or SKIPPED → PENDING, for a retried session to run it again; the
        scheduler makes it READY when its dependencies allow.

        The one way out of an ended status, so it bypasses the status machine on purpose. The
        attempts start over and the last run's outcome goes; the usage the runs cost stays (it
        was spent) and the fencing token keeps growing, so no old lease comes back to life.
        """
        if self.status not in DEAD_STATUSES:
            raise FailedPrecondition(
                f"task {self.id} is {self.status}; only failed, cancelled or skipped tasks reopen"
            )
        moment = self._touch(now)
        previous, self.status = self.status, _S.PENDING
        self.status_updated_at, self.status_reason, self.hold = moment, reason, Hold.NONE
        self.attempt_count, self.next_attempt_at, self.failed_agent_ids = 0, None, []
        self.error, self.result, self.changes = "", None, None
        self.assigned_at = self.started_at = self.completed_at = None
        self._record(_E.REOPENED, moment, previous=previous, reason=reason, actor=actor)

    def _ensure_awaiting_approval(self) -> None:
        if not self.awaiting_approval:
            raise FailedPrecondition(f"task {self.id} is {self.status} and not awaiting approval")
