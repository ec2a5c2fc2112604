"""The Agent aggregate: one registered worker identity, its lifecycle, load and track record."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.common.errors import InvalidArgument

from .events import AgentEventType, DomainEvent
from .kinds import AgentType, Capability, ExecutorKind, SessionType, TaskComplexity, TaskOutcome
from .load import LoadLevel, load_level, utilisation
from .performance import PerformanceMetrics, PerformanceTier
from .scoring import AgentProfile
from .status import AgentStatus, ensure_transition
from .validation import (
    as_utc,
    validate_agent_id,
    validate_capabilities,
    validate_duration,
    validate_executor,
    validate_json_object,
    validate_max_tasks,
    validate_member,
    validate_members,
    validate_model_identifier,
    validate_name,
    validate_quality,
    validate_reason,
    validate_task_id,
    validate_task_ids,
    validate_technologies,
)

_S = AgentStatus
_E = AgentEventType
_REPORTABLE = frozenset({_S.IDLE, _S.BUSY})
# A heartbeat changes nothing about these: DRAINING keeps its course, DEREGISTERED is final.
_HEARTBEAT_KEEPS = frozenset({_S.DRAINING, _S.DEREGISTERED})


@dataclass(frozen=True)
class RunResult:
    """One run's end as the track record takes it."""

    task_id: str
    outcome: TaskOutcome | str
    duration_seconds: float
    quality_score: float | None = None


@dataclass(kw_only=True, slots=True)
class Agent:
    """An agent as the domain sees it; fields mirror the `Agent` proto message.

    `create` makes a new, validated agent. The constructor is for rebuilding a stored one.
    Mutations take `now` (the domain reads no clock) and refuse before changing anything. Every
    versioned change bumps `version` by one and records one DomainEvent. Load
    (`current_task_ids`) and `last_heartbeat_at` are live facts kept outside the versioned
    state: they change with every heartbeat, and a refresh must not contend with real changes.
    """

    id: str
    name: str
    agent_type: AgentType
    primary_capabilities: tuple[Capability, ...]
    secondary_capabilities: tuple[Capability, ...] = ()
    preferred_technologies: tuple[str, ...] = ()
    preferred_session_types: tuple[SessionType, ...] = ()
    complexity_preference: TaskComplexity | None = None
    executor_kind: ExecutorKind = ExecutorKind.SHELL
    executor_endpoint: str = ""
    model_identifier: str = ""
    max_concurrent_tasks: int = 1
    status: AgentStatus = _S.REGISTERING
    status_reason: str = ""
    status_updated_at: datetime
    performance: PerformanceMetrics = field(default_factory=PerformanceMetrics)
    current_task_ids: tuple[str, ...] = ()
    last_heartbeat_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    registered_by: str = ""
    version: int = 1
    created_at: datetime
    updated_at: datetime
    deregistered_at: datetime | None = None
    events: list[DomainEvent] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def create(
        cls,
        *,
        now: datetime,
        name: str,
        agent_type: AgentType | str,
        primary_capabilities: Iterable[Capability | str],
        secondary_capabilities: Iterable[Capability | str] = (),
        preferred_technologies: Iterable[str] = (),
        preferred_session_types: Iterable[SessionType | str] = (),
        complexity_preference: TaskComplexity | str | None = None,
        executor_kind: ExecutorKind | str = ExecutorKind.SHELL,
        executor_endpoint: str = "",
        model_identifier: str = "",
        max_concurrent_tasks: int = 0,
        metadata: Mapping[str, Any] | None = None,
        registered_by: str = "",
        agent_id: str | None = None,
    ) -> Agent:
        """A REGISTERING agent at version 1 with an `agent.registered` event; empty id → uuid4."""
        moment = as_utc(now)
        primary, secondary = validate_capabilities(primary_capabilities, secondary_capabilities)
        executor, endpoint = validate_executor(executor_kind, executor_endpoint)
        complexity = complexity_preference or None
        agent = cls(
            id=validate_agent_id(agent_id),
            name=validate_name(name),
            agent_type=validate_member(AgentType, agent_type, "agent_type"),
            primary_capabilities=primary,
            secondary_capabilities=secondary,
            preferred_technologies=validate_technologies(
                preferred_technologies, "preferred_technologies"
            ),
            preferred_session_types=validate_members(
                SessionType, preferred_session_types, "preferred_session_types"
            ),
            complexity_preference=(
                validate_member(TaskComplexity, complexity, "complexity_preference")
                if complexity
                else None
            ),
            executor_kind=executor,
            executor_endpoint=endpoint,
            model_identifier=validate_model_identifier(model_identifier),
            max_concurrent_tasks=validate_max_tasks(max_concurrent_tasks),
            status_updated_at=moment,
            metadata=validate_json_object(metadata, "metadata"),
            registered_by=registered_by,
            created_at=moment,
            updated_at=moment,
        )
        agent._record(_E.REGISTERED, moment, actor=registered_by)
        return agent

    def same_registration(self, other: Agent) -> bool:
        """True when `other` asks for exactly this registration (a worker registering again)."""
        return _registration(self) == _registration(other)

    def heartbeat_target(self, task_count: int, reported: AgentStatus | None) -> AgentStatus | None:
        """Where a heartbeat would take this agent, or None when its status stays.

        The worker's own IDLE/BUSY wins; otherwise BUSY while it runs any task, else IDLE.
        """
        if self.status in _HEARTBEAT_KEEPS:
            return None
        wanted = reported or (_S.BUSY if task_count else _S.IDLE)
        return None if wanted is self.status else wanted

    def heartbeat(
        self, now: datetime, task_ids: Iterable[str], reported: AgentStatus | None = None
    ) -> None:
        """Records liveness and load; moves the status as `heartbeat_target` says."""
        if reported is not None and reported not in _REPORTABLE:
            raise InvalidArgument(
                f"status: a worker reports idle or busy (or leaves it unset), not {reported}",
                field="status",
            )
        tasks = validate_task_ids(task_ids, "current_task_ids")
        moment = as_utc(now)
        target = self.heartbeat_target(len(tasks), reported)
        if target is not None:
            self._come_alive(target, moment)
        if self.status is not _S.DEREGISTERED:
            self.last_heartbeat_at = moment
            self.report_load(moment, tasks)

    def _come_alive(self, target: AgentStatus, moment: datetime) -> None:
        previous = self.status
        reason = ""
        if previous in (_S.REGISTERING, _S.OFFLINE):
            event = _E.ONLINE
            if previous is _S.OFFLINE and self.performance.consecutive_failures:
                # Out of routing while DEGRADED, a restarted worker needs a fresh chance.
                self.performance.forgive()
                reason = "back online; its run of failures is forgiven"
        else:
            event = _E.BUSY if target is _S.BUSY else _E.IDLE
        self._transition(target, moment, event, reason=reason)

    def report_load(self, now: datetime, task_ids: Iterable[str]) -> None:
        """Sets the current tasks; records `agent.load_changed` (unversioned) when they differ."""
        tasks = tuple(sorted(set(task_ids)))
        if tasks == self.current_task_ids:
            return
        self.current_task_ids = tasks
        self._record(_E.LOAD_CHANGED, as_utc(now))

    def drain(self, now: datetime, *, reason: str = "", actor: str = "") -> None:
        self._transition(_S.DRAINING, now, _E.DRAINING, reason=validate_reason(reason), actor=actor)

    def deregister(self, now: datetime, *, reason: str = "", actor: str = "") -> None:
        moment = self._transition(
            _S.DEREGISTERED, now, _E.DEREGISTERED, reason=validate_reason(reason), actor=actor
        )
        self.deregistered_at = moment
        self.current_task_ids = ()

    def go_offline(self, now: datetime, *, reason: str = "", actor: str = "") -> None:
        """A missed heartbeat: the worker is gone, and so are the slots it held."""
        self._transition(_S.OFFLINE, now, _E.OFFLINE, reason=reason, actor=actor)
        self.current_task_ids = ()

    def record_result(
        self,
        now: datetime,
        *,
        task_id: str,
        outcome: TaskOutcome | str,
        duration_seconds: float,
        quality_score: float | None = None,
        actor: str = "",
    ) -> None:
        """Folds one task outcome into the track record and frees the task's slot.

        Allowed in every status, DEREGISTERED too: results may arrive after the worker left,
        and they are history about the agent, not a change of its course.
        """
        run = RunResult(task_id, outcome, duration_seconds, quality_score)
        self.record_results(now, [run], actor=actor)

    def record_results(self, now: datetime, runs: Sequence[RunResult], *, actor: str = "") -> None:
        """Folds task outcomes into the track record in their order and frees their slots:
        one change of the agent (one version, one `agent.result_recorded`) for all of them.
        Every outcome is checked before any is folded in."""
        if not runs:
            raise InvalidArgument("no task results to record", field="results")
        checked = [
            (
                validate_task_id(r.task_id),
                validate_member(TaskOutcome, r.outcome, "outcome"),
                validate_duration(r.duration_seconds),
                validate_quality(r.quality_score),
            )
            for r in runs
        ]
        moment = self._touch(now)
        before = self.performance.tier
        for _, outcome, duration, quality in checked:
            self.performance.record(outcome, duration, quality, moment)
        done = {task for task, *_ in checked}
        self.current_task_ids = tuple(t for t in self.current_task_ids if t not in done)
        if len(checked) == 1:
            reason = f"task {checked[0][0]} {checked[0][1]}"
        else:
            counts = Counter(str(outcome) for _, outcome, _, _ in checked)
            reason = f"{len(checked)} tasks: " + ", ".join(
                f"{n} {outcome}" for outcome, n in sorted(counts.items())
            )
        if self.performance.tier is not before:
            reason += f"; tier {before} -> {self.performance.tier}"
        self._record(_E.RESULT_RECORDED, moment, reason=reason, actor=actor)

    @property
    def tier(self) -> PerformanceTier:
        return self.performance.tier

    @property
    def utilisation(self) -> float:
        return utilisation(len(self.current_task_ids), self.max_concurrent_tasks)

    @property
    def load_level(self) -> LoadLevel:
        return load_level(len(self.current_task_ids), self.max_concurrent_tasks)

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset(self.primary_capabilities) | frozenset(self.secondary_capabilities)

    def profile(self) -> AgentProfile:
        return AgentProfile(
            agent_id=self.id,
            name=self.name,
            status=self.status,
            tier=self.performance.tier,
            success_rate=self.performance.routing_success_rate,
            primary=frozenset(self.primary_capabilities),
            secondary=frozenset(self.secondary_capabilities),
            technologies=frozenset(self.preferred_technologies),
            session_types=frozenset(self.preferred_session_types),
            complexity=self.complexity_preference,
            max_tasks=self.max_concurrent_tasks,
        )

    def pull_events(self) -> list[DomainEvent]:
        """The events recorded since the last pull, oldest first; the list is then emptied."""
        events, self.events = self.events, []
        return events

    def _transition(
        self,
        target: AgentStatus,
        now: datetime,
        event: AgentEventType,
        *,
        reason: str = "",
        actor: str = "",
    ) -> datetime:
        ensure_transition(self.id, self.status, target)
        moment = self._touch(now)
        previous, self.status = self.status, target
        self.status_updated_at = moment
        self.status_reason = reason
        self._record(event, moment, previous=previous, reason=reason, actor=actor)
        return moment

    def _touch(self, now: datetime) -> datetime:
        moment = as_utc(now)
        self.version += 1
        self.updated_at = moment
        return moment

    def _record(
        self,
        event: AgentEventType,
        moment: datetime,
        *,
        previous: AgentStatus | None = None,
        reason: str = "",
        actor: str = "",
    ) -> None:
        self.events.append(
            DomainEvent(
                type=event,
                agent_id=self.id,
                version=self.version,
                occurred_at=moment,
                status=self.status,
                previous_status=previous,
                reason=reason,
                actor=actor,
            )
        )


def _registration(a: Agent) -> tuple[object, ...]:
    return (
        a.name,
        a.agent_type,
        a.primary_capabilities,
        a.secondary_capabilities,
        a.preferred_technologies,
        a.preferred_session_types,
        a.complexity_preference,
        a.executor_kind,
        a.executor_endpoint,
        a.model_identifier,
        a.max_concurrent_tasks,
        a.metadata,
        a.registered_by,
    )
