"""Task domain objects to and from their proto messages."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from orchestrator.api.common.v1 import common_pb2, taxonomy_pb2
from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.task.v1 import task_pb2 as pb
from orchestrator.common.errors import InvalidArgument
from orchestrator.common.events import new_envelope
from orchestrator.common.protoconv import struct, timestamp
from orchestrator.common.telemetry import session_trace_context
from orchestrator.task.domain import (
    Capability,
    DecompositionTemplate,
    Dependency,
    DependencyType,
    DomainEvent,
    Estimate,
    Schedule,
    Task,
    TaskComplexity,
    TaskNetwork,
    TaskPriority,
    TaskStatus,
    Usage,
    WorkspaceChanges,
)

E = TypeVar("E", bound=StrEnum)

_PROTO_ENUMS: dict[type[StrEnum], tuple[Any, str]] = {
    TaskStatus: (pb.TaskStatus, "TASK_STATUS_"),
    TaskPriority: (pb.TaskPriority, "TASK_PRIORITY_"),
    DependencyType: (pb.DependencyType, "DEPENDENCY_TYPE_"),
    DecompositionTemplate: (pb.DecompositionTemplate, "DECOMPOSITION_TEMPLATE_"),
    Capability: (taxonomy_pb2.Capability, "CAPABILITY_"),
    TaskComplexity: (taxonomy_pb2.TaskComplexity, "TASK_COMPLEXITY_"),
}


# Filled once per member: the graph converts tens of thousands of enums per call.
_NUMBERS: dict[StrEnum, int] = {}


def enum_to_proto(value: StrEnum | None) -> Any:
    """The proto enum number of a domain enum member (0, UNSPECIFIED, for None)."""
    if value is None:
        return 0
    number = _NUMBERS.get(value)
    if number is None:
        wrapper, prefix = _PROTO_ENUMS[type(value)]
        number = _NUMBERS[value] = int(wrapper.Value(prefix + value.value.upper()))
    return number


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


def enum_list(kind: type[E], numbers: Any, field: str) -> list[E]:
    return [v for n in numbers if (v := enum_from_proto(kind, n, field)) is not None]


def estimate_from_proto(msg: pb.PertEstimate) -> Estimate:
    """Validated; expected and sigma on input are ignored (the service computes them)."""
    return Estimate.validated(msg.optimistic_hours, msg.most_likely_hours, msg.pessimistic_hours)


def estimate_to_proto(e: Estimate) -> pb.PertEstimate:
    return pb.PertEstimate(
        optimistic_hours=e.optimistic_hours,
        most_likely_hours=e.most_likely_hours,
        pessimistic_hours=e.pessimistic_hours,
        expected_hours=e.expected_hours,
        sigma_hours=e.sigma_hours,
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


def usage_to_proto(u: Usage) -> common_pb2.Usage:
    return common_pb2.Usage(
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        reasoning_tokens=u.reasoning_tokens,
        cache_read_tokens=u.cache_read_tokens,
        cache_write_tokens=u.cache_write_tokens,
        cost_usd=u.cost_usd,
    )


def changes_from_proto(msg: pb.WorkspaceChanges) -> WorkspaceChanges:
    return WorkspaceChanges(
        msg.branch, msg.base_commit, msg.head_commit, msg.diff, list(msg.changed_files)
    )


def changes_to_proto(c: WorkspaceChanges | None) -> pb.WorkspaceChanges | None:
    if c is None:
        return None
    return pb.WorkspaceChanges(
        branch=c.branch,
        base_commit=c.base_commit,
        head_commit=c.head_commit,
        diff=c.diff,
        changed_files=c.changed_files,
    )


def dependency_to_proto(d: Dependency) -> pb.Dependency:
    return pb.Dependency(
        predecessor_id=d.predecessor_id,
        successor_id=d.successor_id,
        dependency_type=enum_to_proto(d.dependency_type),
        lag_hours=d.lag_hours,
        created_at=timestamp(d.created_at),
    )


def task_to_proto(t: Task) -> pb.Task:
    return pb.Task(
        id=t.id,
        session_id=t.session_id,
        parent_id=t.parent_id or "",
        child_ids=t.child_ids,
        depth=t.depth,
        title=t.title,
        description=t.description,
        task_type=t.task_type,
        status=enum_to_proto(t.status),
        status_reason=t.status_reason,
        status_updated_at=timestamp(t.status_updated_at),
        priority=enum_to_proto(t.priority),
        complexity=enum_to_proto(t.complexity),
        required_capabilities=[enum_to_proto(c) for c in t.required_capabilities],
        technologies=t.technologies,
        estimate=estimate_to_proto(t.estimate),
        dependencies=[dependency_to_proto(d) for d in t.dependencies],
        input=struct(t.input),
        metadata=struct(t.metadata),
        assigned_agent_id=t.assigned_agent_id,
        last_agent_id=t.last_agent_id,
        lease_expires_at=timestamp(t.lease_expires_at),
        fencing_token=t.fencing_token,
        attempt_count=t.attempt_count,
        max_attempts=t.max_attempts,
        next_attempt_at=timestamp(t.next_attempt_at),
        failed_agent_ids=t.failed_agent_ids,
        requires_approval=t.requires_approval,
        awaiting_approval=t.awaiting_approval,
        reviews=[
            pb.Review(
                approved=r.approved, reviewer=r.reviewer, comment=r.comment, at=timestamp(r.at)
            )
            for r in t.reviews
        ],
        result=struct(t.result),
        changes=changes_to_proto(t.changes),
        error=t.error,
        usage=usage_to_proto(t.usage),
        created_by=t.created_by,
        version=t.version,
        created_at=timestamp(t.created_at),
        updated_at=timestamp(t.updated_at),
        assigned_at=timestamp(t.assigned_at),
        started_at=timestamp(t.started_at),
        completed_at=timestamp(t.completed_at),
    )


def event_payload(event: DomainEvent, snapshot: pb.Task) -> events_pb2.TaskEvent:
    return events_pb2.TaskEvent(
        task=snapshot,
        previous_status=enum_to_proto(event.previous_status),
        reason=event.reason,
        dependency=dependency_to_proto(event.dependency) if event.dependency else None,
    )


def envelopes(task: Task) -> list[events_pb2.Event]:
    """The envelopes of the task's pending domain events, each carrying its snapshot; task
    subjects carry the session id (`orch.task.<session>.<task>.<event>`)."""
    events = task.pull_events()
    if not events:
        return []
    snapshot = task_to_proto(task)
    # The session's trace, whichever loop writes the change (the scheduler, a group commit).
    trace = session_trace_context(task.session_id)
    out = []
    for event in events:
        envelope = new_envelope(
            event_type=event.type.value,
            source="task",
            aggregate_type="task",
            aggregate_id=task.id,
            aggregate_version=event.version,
            session_id=task.session_id,
            occurred_at=event.occurred_at,
            trace_context=trace,
        )
        envelope.task.CopyFrom(event_payload(event, snapshot))
        out.append(envelope)
    return out


def graph_to_proto(network: TaskNetwork, plan: Schedule, now: datetime) -> pb.GetGraphResponse:
    # Messages are added in place: building them apart and passing lists would copy each.
    reply = pb.GetGraphResponse(
        topological_order=plan.order,
        ready_task_ids=plan.ready,
        critical_path=pb.CriticalPath(
            task_ids=plan.critical_path,
            expected_hours=plan.expected_hours,
            sigma_hours=plan.sigma_hours,
        ),
        expected_finish_at=timestamp(now + timedelta(hours=plan.expected_hours)),
        computed_at=timestamp(now),
    )
    critical = set(plan.critical_path)
    add_node = reply.nodes.add
    for task in sorted(network.tasks.values(), key=lambda t: t.order):
        timing = plan.timings[task.id]
        add_node(
            task_id=task.id,
            parent_id=task.parent_id or "",
            title=task.title,
            status=enum_to_proto(task.status),
            priority=enum_to_proto(task.priority),
            assigned_agent_id=task.assigned_agent_id,
            expected_hours=task.expected_hours,
            sigma_hours=task.sigma_hours,
            earliest_start_hours=timing.earliest_start,
            latest_start_hours=timing.latest_start,
            slack_hours=timing.slack,
            on_critical_path=task.id in critical,
        )
    add_edge = reply.edges.add
    for d in network.dependencies:
        add_edge(
            predecessor_id=d.predecessor_id,
            successor_id=d.successor_id,
            dependency_type=enum_to_proto(d.dependency_type),
            lag_hours=d.lag_hours,
            created_at=timestamp(d.created_at),
        )
    return reply
