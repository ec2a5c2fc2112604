"""The rules of a task's run: the lease, its fencing token, the outcome and the attempts.

A worker's every call presents the fencing token of its lease; a token that is not the current
one, or a lease that ran out, means the lease was lost and the call is refused whatever else
it says (FailedPrecondition: re-reading does not help).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from orchestrator.common.errors import FailedPrecondition

from .events import TaskEventType
from .outcome import Usage, WorkspaceChanges, lease_duration, retry_backoff
from .state import TaskState
from .status import LEASED_STATUSES, TaskStatus
from .validation import as_utc, validate_json_object, validate_required_text

_S = TaskStatus
_E = TaskEventType


class TaskRun(TaskState):
    """The run's rules; `Task` adds creation, planning and control."""

    __slots__ = ()

    def ensure_assignable(self, now: datetime) -> None:
        """Refuses what `assign` would refuse whatever the agent: so routing is not asked for
        a task that could not take the route anyway."""
        if self.is_parent:
            raise FailedPrecondition(
                f"task {self.id} is a parent: its {len(self.child_ids)} subtasks run instead"
            )
        self._only_from((_S.READY,), "assign")
        if self.next_attempt_at and self.next_attempt_at > as_utc(now):
            raise FailedPrecondition(
                f"task {self.id} waits until {self.next_attempt_at.isoformat()} "
                f"before its next attempt ({self.status_reason or 'backoff'})"
            )

    def assign(self, now: datetime, agent_id: str, lease_seconds: int, *, actor: str = "") -> int:
        """READY → ASSIGNED under a new fencing token, which is returned."""
        validate_required_text(agent_id, "agent_id", "an assignment names its agent")
        self.ensure_assignable(now)
        duration = lease_duration(lease_seconds)
        moment = self._transition(_S.ASSIGNED, now, _E.ASSIGNED, f"to {agent_id}", actor)
        self.fencing_token += 1
        self.assigned_agent_id = self.last_agent_id = agent_id
        self.assigned_at = moment
        self.lease_expires_at = moment + duration
        self.next_attempt_at = None
        return self.fencing_token

    def start(self, now: datetime, token: int, *, actor: str = "", lease_seconds: int = 0) -> None:
        """ASSIGNED → IN_PROGRESS; with `lease_seconds`, the running worker's own lease
        replaces the assignment's in the same write. The lease holder asking again (its first
        answer was lost on the way) is told it started, and nothing changes."""
        self.check_lease(now, token)
        if self.status is _S.IN_PROGRESS:
            return
        self._only_from((_S.ASSIGNED,), "start")
        expires = as_utc(now) + lease_duration(lease_seconds) if lease_seconds else None
        self.started_at = self._transition(_S.IN_PROGRESS, now, _E.STARTED, actor=actor)
        if expires is not None:
            self.lease_expires_at = expires

    def complete(
        self,
        now: datetime,
        token: int,
        *,
        result: Mapping[str, Any] | None,
        usage: Usage,
        changes: WorkspaceChanges | None,
        finish_blockers: Sequence[str],
        actor: str = "",
    ) -> None:
        """IN_PROGRESS → COMPLETED, or BLOCKED awaiting approval or a finish dependency."""
        self.check_lease(now, token)
        self._only_from((_S.IN_PROGRESS,), "complete")
        outcome = validate_json_object(result, "result")
        added = usage.validated()
        if self.requires_approval:
            self._await_approval(now, actor)
        else:
            self._settle(now, finish_blockers, "", actor)
        self.result, self.changes = outcome, changes
        self.usage = self.usage + added

    def fail(
        self,
        now: datetime,
        token: int,
        error: str,
        *,
        retryable: bool,
        usage: Usage,
        actor: str = "",
    ) -> bool:
        """Uses an attempt. READY again after a backoff when retryable and attempts remain
        (True), FAILED for good otherwise (False)."""
        validate_required_text(error, "error", "a failure must say what went wrong")
        self.check_lease(now, token)
        added = usage.validated()
        used = self.attempt_count + 1
        agent = self.assigned_agent_id
        will_retry = retryable and used < self.max_attempts
        if will_retry:
            reason = f"attempt {used} of {self.max_attempts} failed: {error}"
            moment = self._transition(_S.READY, now, _E.RETRY_SCHEDULED, reason, actor)
            self.next_attempt_at = moment + retry_backoff(used)
        else:
            why = "not retryable" if not retryable else f"all {self.max_attempts} attempts used"
            self._transition(_S.FAILED, now, _E.FAILED, f"{error} ({why})", actor)
        self.attempt_count, self.error = used, error
        self.usage = self.usage + added
        if agent and agent not in self.failed_agent_ids:
            self.failed_agent_ids.append(agent)
        return will_retry

    def renew(self, now: datetime, token: int, lease_seconds: int) -> datetime:
        """Extends the lease from now. Not a change of state: no version bump, no event."""
        self.check_lease(now, token)
        expires = as_utc(now) + lease_duration(lease_seconds)
        self.lease_expires_at = expires
        return expires

    def release(
        self, now: datetime, token: int, reason: str = "", *, expired: bool = False, actor: str = ""
    ) -> None:
        """Gives the lease up without using an attempt; token 0 releases whatever is current."""
        if token:
            self.check_lease(now, token)
        elif self.status not in LEASED_STATUSES:
            raise FailedPrecondition(f"task {self.id} is {self.status} and holds no lease")
        event = _E.LEASE_EXPIRED if expired else _E.RELEASED
        why = reason or ("the lease ran out" if expired else "released")
        self._transition(_S.READY, now, event, why, actor)

    def check_lease(self, now: datetime, token: int) -> None:
        """Refuses a worker whose lease is not the current one: re-reading does not help."""
        if self.status not in LEASED_STATUSES:
            raise FailedPrecondition(
                f"task {self.id} is {self.status} and holds no lease; fencing token {token} "
                "belongs to a lease that ended"
            )
        if token != self.fencing_token:
            raise FailedPrecondition(
                f"fencing token {token} is stale: task {self.id} is leased under token "
                f"{self.fencing_token}"
            )
        if self.lease_expires_at is not None and self.lease_expires_at <= as_utc(now):
            raise FailedPrecondition(
                f"the lease of task {self.id} (token {token}) expired at "
                f"{self.lease_expires_at.isoformat()}"
            )
