"""Agent domain objects to and from their proto messages."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, TypeVar

from orchestrator.agent.domain import (
    Agent,
    AgentStatus,
    AgentType,
    Candidate,
    Capability,
    DomainEvent,
    ExecutorKind,
    LoadLevel,
    PerformanceTier,
    RouteScore,
    SessionType,
    TaskComplexity,
    TaskOutcome,
)
from orchestrator.api.agent.v1 import agent_pb2 as pb
from orchestrator.api.common.v1 import taxonomy_pb2
from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.session.v1 import session_pb2
from orchestrator.common.errors import InvalidArgument
from orchestrator.common.events import new_envelope
from orchestrator.common.protoconv import struct, timestamp
from orchestrator.common.telemetry import inject_trace_context

E = TypeVar("E", bound=StrEnum)

# Domain enum -> (proto enum wrapper, name prefix, what one value is called in messages).
_PROTO_ENUMS: dict[type[StrEnum], tuple[Any, str, str]] = {
    AgentType: (pb.AgentType, "AGENT_TYPE_", "agent type"),
    AgentStatus: (pb.AgentStatus, "AGENT_STATUS_", "agent status"),
    PerformanceTier: (pb.PerformanceTier, "PERFORMANCE_TIER_", "performance tier"),
    LoadLevel: (pb.LoadLevel, "LOAD_LEVEL_", "load level"),
    ExecutorKind: (pb.ExecutorKind, "EXECUTOR_KIND_", "executor kind"),
    TaskOutcome: (pb.TaskOutcome, "TASK_OUTCOME_", "task outcome"),
    Capability: (taxonomy_pb2.Capability, "CAPABILITY_", "capability"),
    TaskComplexity: (taxonomy_pb2.TaskComplexity, "TASK_COMPLEXITY_", "task complexity"),
    SessionType: (session_pb2.SessionType, "SESSION_TYPE_", "session type"),
}


# Worked out once: snapshots of agents are built for every event and every reply. Keyed by
# type too: members of two StrEnums with the same value (idle) are equal as strings.
_NUMBERS: dict[tuple[type[StrEnum], str], int] = {
    (kind, member.value): int(wrapper.Value(prefix + member.value.upper()))
    for kind, (wrapper, prefix, _) in _PROTO_ENUMS.items()
    for member in kind
}


def enum_to_proto(value: StrEnum | None) -> Any:
    """The proto enum number of a domain enum member (0, UNSPECIFIED, for None)."""
    return 0 if value is None else _NUMBERS[type(value), value.value]


def enum_from_proto(kind: type[E], number: int, field: str) -> E | None:
    """None for UNSPECIFIED; a number the contract does not define is the caller's mistake."""
    if number == 0:
        return None
    wrapper, prefix, label = _PROTO_ENUMS[kind]
    try:
        name: str = wrapper.Name(number)
    except ValueError:
        raise InvalidArgument(f"{field}: {number} is not a known {label}", field=field) from None
    return kind(name.removeprefix(prefix).lower())


def required_enum(kind: type[E], number: int, field: str) -> E:
    value = enum_from_proto(kind, number, field)
    if value is None:
        _, prefix, label = _PROTO_ENUMS[kind]
        raise InvalidArgument(
            f"{field} is required: {prefix}UNSPECIFIED is not a {label}", field=field
        )
    return value


def enum_list(kind: type[E], numbers: Iterable[int], field: str) -> tuple[E, ...]:
    """Every entry must be a real value: UNSPECIFIED in a list is refused, not skipped."""
    return tuple(required_enum(kind, n, field) for n in numbers)


def _enums(values: Iterable[StrEnum]) -> list[Any]:
    return [enum_to_proto(v) for v in values]


def performance_to_proto(a: Agent) -> pb.PerformanceMetrics:
    p = a.performance
    return pb.PerformanceMetrics(
        tasks_completed=p.tasks_completed,
        tasks_failed=p.tasks_failed,
        tasks_partial=p.tasks_partial,
        success_rate=p.success_rate,
        recent_success_rate=p.recent_success_rate,
        consecutive_failures=p.consecutive_failures,
        average_duration_seconds=p.average_duration_seconds,
        average_quality_score=p.average_quality_score,
        tier=enum_to_proto(p.tier),
        last_result_at=timestamp(p.last_result_at),
    )


def agent_to_proto(a: Agent) -> pb.Agent:
    return pb.Agent(
        id=a.id,
        name=a.name,
        agent_type=enum_to_proto(a.agent_type),
        primary_capabilities=_enums(a.primary_capabilities),
        secondary_capabilities=_enums(a.secondary_capabilities),
        preferred_technologies=a.preferred_technologies,
        preferred_session_types=_enums(a.preferred_session_types),
        complexity_preference=enum_to_proto(a.complexity_preference),
        executor_kind=enum_to_proto(a.executor_kind),
        executor_endpoint=a.executor_endpoint,
        model_identifier=a.model_identifier,
        max_concurrent_tasks=a.max_concurrent_tasks,
        status=enum_to_proto(a.status),
        status_reason=a.status_reason,
        status_updated_at=timestamp(a.status_updated_at),
        performance=performance_to_proto(a),
        load=pb.LoadMetrics(
            current_tasks=len(a.current_task_ids),
            utilisation=a.utilisation,
            level=enum_to_proto(a.load_level),
            current_task_ids=a.current_task_ids,
        ),
        last_heartbeat_at=timestamp(a.last_heartbeat_at),
        metadata=struct(a.metadata),
        registered_by=a.registered_by,
        version=a.version,
        created_at=timestamp(a.created_at),
        updated_at=timestamp(a.updated_at),
        deregistered_at=timestamp(a.deregistered_at),
    )


def score_to_proto(s: RouteScore) -> pb.RouteScore:
    return pb.RouteScore(
        capability_fit=s.capability_fit,
        success_rate=s.success_rate,
        utilisation=s.utilisation,
        technology_match=s.technology_match,
        session_type_preference=s.session_type_preference,
        complexity_alignment=s.complexity_alignment,
        weighted_sum=s.weighted_sum,
        tier_multiplier=s.tier_multiplier,
        total=s.total,
    )


def candidate_to_proto(c: Candidate) -> pb.RouteCandidate:
    return pb.RouteCandidate(
        agent_id=c.agent.agent_id,
        agent_name=c.agent.name,
        tier=enum_to_proto(c.agent.tier),
        score=score_to_proto(c.score),
        max_concurrent_tasks=c.agent.max_tasks,
    )


def event_payload(event: DomainEvent, snapshot: pb.Agent) -> events_pb2.AgentEvent:
    return events_pb2.AgentEvent(
        agent=snapshot,
        previous_status=enum_to_proto(event.previous_status),
        reason=event.reason,
    )


def envelopes_of(agent: Agent) -> list[events_pb2.Event]:
    """The envelopes of the agent's pending domain events, each with the agent as it is now."""
    snapshot = agent_to_proto(agent)
    trace = inject_trace_context()
    envelopes = []
    for event in agent.pull_events():
        envelope = new_envelope(
            event_type=event.type.value,
            source="agent",
            aggregate_type="agent",
            aggregate_id=agent.id,
            aggregate_version=event.version,
            session_id="",
            occurred_at=event.occurred_at,
            trace_context=trace,
        )
        envelope.agent.CopyFrom(event_payload(event, snapshot))
        envelopes.append(envelope)
    return envelopes
