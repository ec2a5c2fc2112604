"""The Session aggregate: one user prompt, its lifecycle, checkpoints and metrics."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from orchestrator.common.errors import FailedPrecondition

from .budget import budget_change, budget_exhausted, with_budgets
from .checkpoint import Checkpoint, next_sequence
from .events import DomainEvent, SessionEventType
from .health import health_score as _health_score
from .kinds import PermissionPolicy, SessionPriority, SessionType
from .limits import SessionLimits
from .metrics import SessionMetrics, Usage
from .status import (
    ACTIVE_STATUSES,
    ENDED_STATUSES,
    TERMINAL_STATUSES,
    SessionStatus,
    ensure_transition,
)
from .validation import (
    as_utc,
    validate_agent_config,
    validate_description,
    validate_initial_prompt,
    validate_json_object,
    validate_limits,
    validate_max_duration,
    validate_member,
    validate_model_identifier,
    validate_parent_id,
    validate_required_text,
    validate_session_id,
    validate_tags,
    validate_task_count,
    validate_title,
    validate_usage,
)

_S = SessionStatus
_E = SessionEventType
_STARTABLE = frozenset({_S.PENDING, _S.QUEUED})
_RESUMABLE = frozenset({_S.PAUSED, _S.DEGRADED})


@dataclass(kw_only=True, slots=True)
class Session:
    """A session as the domain sees it; fields mirror the `Session` proto message.

    `create` makes a new, validated session. The constructor is for rebuilding a stored one.
    Every mutation takes `now` (the domain reads no clock), refuses before changing anything,
    then bumps `version` by exactly one, sets `updated_at` and records one DomainEvent.
    """

    id: str
    title: str
    description: str = ""
    session_type: SessionType = SessionType.EXECUTION
    priority: SessionPriority = SessionPriority.MEDIUM
    status: SessionStatus = _S.PENDING
    status_updated_at: datetime
    status_reason: str = ""
    parent_id: str | None = None
    # Filled by the repository from other sessions' parent_id, so creating a child never
    # contends for the parent's version.
    child_ids: list[str] = field(default_factory=list)
    agent_config: dict[str, str] = field(default_factory=dict)
    model_identifier: str = ""
    initial_prompt: str
    max_duration_seconds: int = 3_600
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    created_by: str = ""
    metrics: SessionMetrics = field(default_factory=SessionMetrics)
    limits: SessionLimits = field(default_factory=SessionLimits)
    permission_policy: PermissionPolicy = PermissionPolicy.ESCALATE
    workspace: str = ""
    latest_checkpoint: Checkpoint | None = None
    version: int = 1
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: str = ""
    events: list[DomainEvent] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def create(
        cls,
        *,
        now: datetime,
        title: str,
        initial_prompt: str,
        session_id: str | None = None,
        description: str = "",
        session_type: SessionType | str = SessionType.EXECUTION,
        priority: SessionPriority | str = SessionPriority.MEDIUM,
        parent_id: str | None = None,
        agent_config: Mapping[str, str] | None = None,
        model_identifier: str = "",
        max_duration_seconds: int = 0,
        tags: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
        created_by: str = "",
        limits: SessionLimits | None = None,
        permission_policy: PermissionPolicy | str = PermissionPolicy.ESCALATE,
        workspace: str = "",
    ) -> Session:
        """A PENDING session at version 1 with a `session.created` event; empty id → uuid4."""
        moment = as_utc(now)
        ident = validate_session_id(session_id)
        session = cls(
            id=ident,
            title=validate_title(title),
            description=validate_description(description),
            session_type=validate_member(SessionType, session_type, "session_type"),
            priority=validate_member(SessionPriority, priority, "priority"),
            status_updated_at=moment,
            parent_id=validate_parent_id(parent_id, ident),
            agent_config=validate_agent_config(agent_config),
            model_identifier=validate_model_identifier(model_identifier),
            initial_prompt=validate_initial_prompt(initial_prompt),
            max_duration_seconds=validate_max_duration(max_duration_seconds),
            tags=validate_tags(tags),
            metadata=validate_json_object(metadata, "metadata"),
            created_by=created_by,
            limits=validate_limits(limits or SessionLimits()),
            permission_policy=validate_member(
                PermissionPolicy, permission_policy, "permission_policy"
            ),
            workspace=workspace,
            created_at=moment,
            updated_at=moment,
        )
        session._record(_E.CREATED, moment, actor=created_by)
        return session

    def queue(self, now: datetime, *, actor: str = "") -> None:
        self._transition(_S.QUEUED, now, _E.QUEUED, actor=actor)

    def start(self, now: datetime, *, actor: str = "", work_done: bool = False) -> None:
        """PENDING or QUEUED → RUNNING; begins an attempt, so the clock starts now.

        `work_done`: the root task completed after the previous attempt ended (work in flight
        finished it after a timeout, say). A retried session then has nothing left to run, so
        it completes as it starts rather than wait for an end that will not come."""
        self._only_from(_STARTABLE, "start", "resume")
        moment = self._transition(_S.RUNNING, now, _E.STARTED, actor=actor)
        self.metrics.begin_attempt(moment)
        if work_done and self.metrics.retry_count > 0:
            self.complete(now, actor=actor)

    def pause(self, now: datetime, *, reason: str = "", actor: str = "") -> None:
        self._transition(_S.PAUSED, now, _E.PAUSED, reason=reason, actor=actor)

    def resume(
        self,
        now: datetime,
        *,
        token_budget: int | None = None,
        cost_budget_usd: float | None = None,
        actor: str = "",
    ) -> None:
        """PAUSED or DEGRADED → RUNNING; the attempt's clock keeps its original start.

        Refused while a budget is exhausted. The budgets given (None keeps one) replace the
        session's before that check, so raising a budget is how a budget-paused session resumes.
        """
        self._only_from(_RESUMABLE, "resume", "start")
        change = self._take_budgets("resume", token_budget, cost_budget_usd)
        self._transition(_S.RUNNING, now, _E.RESUMED, reason=change, actor=actor)

    def wake_to_end(self, now: datetime, why: str, *, actor: str = "") -> None:
        """PAUSED → RUNNING because its work ended (the runs under way when it paused finished
        it), so it can end: only RUNNING and DEGRADED lead to an end. No budget check, as no
        new work follows."""
        self._only_from(frozenset({_S.PAUSED}), "wake_to_end", "resume")
        self._transition(_S.RUNNING, now, _E.RESUMED, reason=why, actor=actor)

    def stop(self, now: datetime, *, reason: str = "", actor: str = "") -> None:
        self._transition(_S.STOPPED, now, _E.STOPPED, reason=reason, actor=actor)

    def cancel(self, now: datetime, *, reason: str = "", actor: str = "") -> None:
        self._transition(_S.CANCELLED, now, _E.CANCELLED, reason=reason, actor=actor)

    def complete(
        self,
        now: datetime,
        result: Mapping[str, Any] | None = None,
        *,
        partial: bool = False,
        actor: str = "",
    ) -> None:
        """→ COMPLETED, or PARTIALLY_COMPLETED when `partial` (which only RUNNING allows)."""
        outcome = validate_json_object(result, "result")
        if partial:
            self._transition(_S.PARTIALLY_COMPLETED, now, _E.PARTIALLY_COMPLETED, actor=actor)
        else:
            self._transition(_S.COMPLETED, now, _E.COMPLETED, actor=actor)
        self.result = outcome

    def fail(self, now: datetime, error: str, *, actor: str = "") -> None:
        validate_required_text(error, "error", "a failure must say what went wrong")
        self._transition(_S.FAILED, now, _E.FAILED, reason=error, actor=actor)
        self.error = error

    def degrade(self, now: datetime, reason: str, *, actor: str = "") -> None:
        validate_required_text(reason, "reason", "a degraded session must say what is wrong")
        self._transition(_S.DEGRADED, now, _E.DEGRADED, reason=reason, actor=actor)

    def time_out(self, now: datetime, *, actor: str = "") -> None:
        """RUNNING → TIMEOUT (the only way into TIMEOUT the status machine has)."""
        reason = f"max duration of {self.max_duration_seconds} s passed"
        self._transition(_S.TIMEOUT, now, _E.TIMED_OUT, reason=reason, actor=actor)
        self.error = f"timed out: {reason}"

    def expire(self, now: datetime, *, actor: str = "") -> None:
        """Ends an overdue session by the path its status allows; the sweeper's one call.

        RUNNING times out. The status machine has no edge to TIMEOUT from DEGRADED or PAUSED,
        so a DEGRADED session fails and a PAUSED one stops, each saying the time ran out.
        """
        if not self.is_overdue(now):
            raise FailedPrecondition(f"session {self.id} is {self.status} and not overdue")
        reason = f"max duration of {self.max_duration_seconds} s passed"
        if self.status is _S.RUNNING:
            self.time_out(now, actor=actor)
        elif self.status is _S.DEGRADED:
            self.fail(now, f"timed out while degraded: {reason}", actor=actor)
        else:
            self.stop(now, reason=f"{reason} while paused", actor=actor)

    def retry(
        self,
        now: datetime,
        *,
        token_budget: int | None = None,
        cost_budget_usd: float | None = None,
        actor: str = "",
    ) -> Checkpoint | None:
        """FAILED or TIMEOUT → PENDING for a fresh attempt; returns the checkpoint to resume from.

        Allowed while retry_count < limits.max_retries and no budget is exhausted (the budgets
        given replace the session's first, as for `resume`). Clears the attempt's timestamps,
        error and result; checkpoints stay, so later sequences continue after the latest one.
        """
        self._ensure_live()
        ensure_transition(self.id, self.status, _S.PENDING)
        used, allowed = self.metrics.retry_count, self.limits.max_retries
        if used >= allowed:
            raise FailedPrecondition(
                f"session {self.id} has used {used} of {allowed} retries (limits.max_retries); "
                "it cannot be retried again"
            )
        change = self._take_budgets("retry", token_budget, cost_budget_usd)
        reason = f"retry {used + 1} of {allowed}" + (f"; {change}" if change else "")
        resume_from = self.latest_checkpoint
        self._transition(
            _S.PENDING, now, _E.RETRIED, reason=reason, actor=actor, checkpoint=resume_from
        )
        self.metrics.retry_count += 1
        self.metrics.clear_attempt()
        self.error, self.result = "", None
        return resume_from

    def pause_if_over_budget(self, now: datetime, *, actor: str = "") -> bool:
        """A RUNNING or DEGRADED session whose budget is exhausted takes no new work: it
        pauses, the reason naming the budget. True when it paused.

        The status machine has no DEGRADED → PAUSED edge, so a degraded session passes through
        RUNNING in the same change (two events, one write: no one sees it running).
        """
        if self.deleted_at is not None or self.status not in (_S.RUNNING, _S.DEGRADED):
            return False
        why = budget_exhausted(self.limits, self.metrics.usage)
        if not why:
            return False
        if self.status is _S.DEGRADED:
            self._transition(_S.RUNNING, now, _E.RESUMED, reason=why, actor=actor)
        self._transition(_S.PAUSED, now, _E.PAUSED, reason=why, actor=actor)
        return True

    def add_checkpoint(
        self, now: datetime, data: Mapping[str, Any], *, created_by: str = "", sequence: int = 0
    ) -> Checkpoint:
        """Allowed in every non-terminal status (FAILED and TIMEOUT included: a retry resumes
        from it); refused once terminal, as nothing can resume from a checkpoint any more.
        `sequence` 0 takes the next number; an explicit one must exceed the latest."""
        self._ensure_live()
        if self.status in TERMINAL_STATUSES:
            raise FailedPrecondition(
                f"session {self.id} is {self.status}; checkpoints are only taken while "
                "it can still resume"
            )
        payload = validate_json_object(data, "data")
        number = next_sequence(self.latest_checkpoint, sequence)
        moment = self._touch(now)
        checkpoint = Checkpoint(self.id, number, moment, payload, created_by)
        self.latest_checkpoint = checkpoint
        self.metrics.checkpoint_count += 1
        self._record(_E.CHECKPOINT_ADDED, moment, actor=created_by, checkpoint=checkpoint)
        return checkpoint

    def record_usage(
        self,
        now: datetime,
        *,
        usage: Usage | None = None,
        tasks_total: int | None = None,
        tasks_completed: int | None = None,
        tasks_failed: int | None = None,
        tasks_skipped: int | None = None,
        actor: str = "",
    ) -> None:
        """Adds `usage` to the totals and sets the task counts given (None leaves one as is).

        Allowed in any status: reports from the task service may arrive after the end.
        """
        self._ensure_live()
        added = validate_usage(usage or Usage())
        counts = {
            "tasks_total": tasks_total,
            "tasks_completed": tasks_completed,
            "tasks_failed": tasks_failed,
            "tasks_skipped": tasks_skipped,
        }
        for name, count in counts.items():
            validate_task_count(count, name)
        moment = self._touch(now)
        self.metrics.usage = self.metrics.usage + added
        for name, count in counts.items():
            if count is not None:
                setattr(self.metrics, name, count)
        self._record(_E.USAGE_RECORDED, moment, actor=actor)

    def delete(self, now: datetime, *, actor: str = "") -> None:
        """Soft delete. Refused while RUNNING, PAUSED or DEGRADED: hidden work would go on."""
        self._ensure_live()
        if self.status in ACTIVE_STATUSES:
            raise FailedPrecondition(
                f"session {self.id} is {self.status}; stop it before deleting it"
            )
        moment = self._touch(now)
        self.deleted_at = moment
        self._record(_E.DELETED, moment, actor=actor)

    @property
    def deadline(self) -> datetime | None:
        """When the running attempt runs out of time; None unless the status is ACTIVE.

        This is what the sweeper indexes: only ACTIVE sessions have a clock running.
        """
        started_at = self.metrics.started_at
        if self.status not in ACTIVE_STATUSES or started_at is None:
            return None
        return started_at + timedelta(seconds=self.max_duration_seconds)

    def is_overdue(self, now: datetime) -> bool:
        deadline = self.deadline
        return deadline is not None and as_utc(now) >= deadline

    def health_score(self, now: datetime) -> float:
        """See `health.health_score` for the formula."""
        return _health_score(
            self.status, self.metrics.started_at, self.max_duration_seconds, as_utc(now)
        )

    def pull_events(self) -> list[DomainEvent]:
        """The events recorded since the last pull, oldest first; the list is then emptied."""
        events, self.events = self.events, []
        return events

    def _transition(
        self,
        target: SessionStatus,
        now: datetime,
        event: SessionEventType,
        *,
        reason: str = "",
        actor: str = "",
        checkpoint: Checkpoint | None = None,
    ) -> datetime:
        self._ensure_live()
        ensure_transition(self.id, self.status, target)
        moment = self._touch(now)
        previous, self.status = self.status, target
        self.status_updated_at = moment
        self.status_reason = reason
        if target in ENDED_STATUSES:
            self.metrics.end_attempt(moment)
        self._record(
            event, moment, previous=previous, reason=reason, actor=actor, checkpoint=checkpoint
        )
        return moment

    def _only_from(self, sources: frozenset[SessionStatus], verb: str, instead: str) -> None:
        """Start and resume share the target RUNNING; each also insists on its own sources."""
        self._ensure_live()
        ensure_transition(self.id, self.status, _S.RUNNING)
        if self.status not in sources:
            allowed = " or ".join(sorted(sources))
            raise FailedPrecondition(
                f"session {self.id} is {self.status}; {verb} applies to {allowed} sessions "
                f"({instead} it instead)"
            )

    def _take_budgets(self, verb: str, tokens: int | None, cost_usd: float | None) -> str:
        """Replaces the budgets given, unless the result is still exhausted (then refuses and
        changes nothing); returns the change in words."""
        limits = with_budgets(self.limits, tokens, cost_usd)
        why = budget_exhausted(limits, self.metrics.usage)
        if why:
            raise FailedPrecondition(
                f"session {self.id} cannot {verb}: {why}; {verb} it with a higher budget "
                "(token_budget or cost_budget_usd, 0 for unlimited)"
            )
        change, self.limits = budget_change(self.limits, limits), limits
        return f"budgets changed: {change}" if change else ""

    def _ensure_live(self) -> None:
        if self.deleted_at is not None:
            raise FailedPrecondition(
                f"session {self.id} was deleted at {self.deleted_at.isoformat()}; "
                "it takes no more changes"
            )

    def _touch(self, now: datetime) -> datetime:
        moment = as_utc(now)
        self.version += 1
        self.updated_at = moment
        return moment

    def _record(
        self,
        event: SessionEventType,
        moment: datetime,
        *,
        previous: SessionStatus | None = None,
        reason: str = "",
        actor: str = "",
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.events.append(
            DomainEvent(
                type=event,
                session_id=self.id,
                version=self.version,
                occurred_at=moment,
                status=self.status,
                previous_status=previous,
                reason=reason,
                actor=actor,
                checkpoint=checkpoint,
            )
        )
