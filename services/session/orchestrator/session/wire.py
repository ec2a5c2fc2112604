"""Session domain objects to and from their proto messages."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.session.v1 import session_pb2 as pb
from orchestrator.common.errors import InvalidArgument
from orchestrator.common.protoconv import struct, timestamp
from orchestrator.session.domain import (
    Checkpoint,
    DomainEvent,
    PermissionPolicy,
    Session,
    SessionLimits,
    SessionPriority,
    SessionStatus,
    SessionType,
    Usage,
)

E = TypeVar("E", bound=StrEnum)

_PROTO_ENUMS: dict[type[StrEnum], tuple[Any, str]] = {
    SessionStatus: (pb.SessionStatus, "SESSION_STATUS_"),
    SessionType: (pb.SessionType, "SESSION_TYPE_"),
    SessionPriority: (pb.SessionPriority, "SESSION_PRIORITY_"),
    PermissionPolicy: (pb.PermissionPolicy, "PERMISSION_POLICY_"),
}


def enum_to_proto(value: StrEnum | None) -> Any:
    """The proto enum number of a domain enum member (0, UNSPECIFIED, for None)."""
    if value is None:
        return 0
    wrapper, prefix = _PROTO_ENUMS[type(value)]
    return int(wrapper.Value(prefix + value.value.upper()))


def enum_from_proto(kind: type[E], number: int, field: str) -> E | None:
    """None for UNSPECIFIED; an unknown number is the caller's mistake."""
    if number == 0:
        return None
    wrapper, prefix = _PROTO_ENUMS[kind]
    try:
        name: str = wrapper.Name(number)
    except ValueError as exc:
        raise InvalidArgument(f"{field}: unknown value {number}", field=field) from exc
    return kind(name.removeprefix(prefix).lower())


def checkpoint_to_proto(cp: Checkpoint) -> pb.Checkpoint:
    return pb.Checkpoint(
        session_id=cp.session_id,
        sequence=cp.sequence,
        data=struct(cp.data),
        created_by=cp.created_by,
        created_at=timestamp(cp.created_at),
    )


def usage_to_proto(u: Usage) -> common_pb2.Usage:
    return common_pb2.Usage(
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        reasoning_tokens=u.reasoning_tokens,
        cache_read_tokens=u.cache_read_tokens,
        cache_write_tokens=u.cache_write_tokens,
        cost_usd=u.cost_usd,
    )


def usage_from_proto(u: common_pb2.Usage) -> Usage:
    return Usage(
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        reasoning_tokens=u.reasoning_tokens,
        cache_read_tokens=u.cache_read_tokens,
        cache_write_tokens=u.cache_write_tokens,
        cost_usd=u.cost_usd,
    )


def limits_from_proto(msg: pb.SessionLimits) -> SessionLimits:
    defaults = SessionLimits()
    return SessionLimits(
        max_parallel_tasks=msg.max_parallel_tasks,
        token_budget=msg.token_budget,
        cost_budget_usd=msg.cost_budget_usd,
        max_retries=msg.max_retries if msg.HasField("max_retries") else defaults.max_retries,
    )


def session_to_proto(s: Session, now: datetime) -> pb.Session:
    m = s.metrics
    return pb.Session(
        id=s.id,
        title=s.title,
        description=s.description,
        session_type=enum_to_proto(s.session_type),
        priority=enum_to_proto(s.priority),
        status=enum_to_proto(s.status),
        status_updated_at=timestamp(s.status_updated_at),
        status_reason=s.status_reason,
        parent_id=s.parent_id or "",
        child_ids=s.child_ids,
        agent_config=s.agent_config,
        model_identifier=s.model_identifier,
        initial_prompt=s.initial_prompt,
        max_duration_seconds=s.max_duration_seconds,
        tags=s.tags,
        metadata=struct(s.metadata),
        created_by=s.created_by,
        metrics=pb.SessionMetrics(
            started_at=timestamp(m.started_at),
            completed_at=timestamp(m.completed_at),
            duration_seconds=m.duration_seconds,
            retry_count=m.retry_count,
            checkpoint_count=m.checkpoint_count,
            usage=usage_to_proto(m.usage),
            tasks_total=m.tasks_total,
            tasks_completed=m.tasks_completed,
            tasks_failed=m.tasks_failed,
            tasks_skipped=m.tasks_skipped,
        ),
        limits=pb.SessionLimits(
            max_parallel_tasks=s.limits.max_parallel_tasks,
            token_budget=s.limits.token_budget,
            cost_budget_usd=s.limits.cost_budget_usd,
            max_retries=s.limits.max_retries,
        ),
        permission_policy=enum_to_proto(s.permission_policy),
        workspace=s.workspace,
        health_score=s.health_score(now),
        latest_checkpoint=(
            checkpoint_to_proto(s.latest_checkpoint) if s.latest_checkpoint else None
        ),
        version=s.version,
        created_at=timestamp(s.created_at),
        updated_at=timestamp(s.updated_at),
        deleted_at=timestamp(s.deleted_at),
        result=struct(s.result),
        error=s.error,
    )


def event_payload(event: DomainEvent, snapshot: pb.Session) -> events_pb2.SessionEvent:
    return events_pb2.SessionEvent(
        session=snapshot,
        previous_status=enum_to_proto(event.previous_status),
        reason=event.reason,
        checkpoint=checkpoint_to_proto(event.checkpoint) if event.checkpoint else None,
    )
