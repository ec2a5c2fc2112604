"""An Agent as a JSON document for the `body` column, and back.

Load (`current_task_ids`) is left out: it lives in Redis and changes without a version bump,
so a stored copy would only go stale.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestrator.agent.domain import (
    Agent,
    AgentStatus,
    AgentType,
    Capability,
    ExecutorKind,
    PerformanceMetrics,
    PerformanceTier,
    SessionType,
    TaskComplexity,
    TaskOutcome,
)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _required(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _performance_to_json(p: PerformanceMetrics) -> dict[str, Any]:
    return {
        "tasks_completed": p.tasks_completed,
        "tasks_failed": p.tasks_failed,
        "tasks_partial": p.tasks_partial,
        "consecutive_failures": p.consecutive_failures,
        "total_duration_seconds": p.total_duration_seconds,
        "quality_total": p.quality_total,
        "quality_count": p.quality_count,
        "recent": [o.value for o in p.recent],
        "tier": p.tier.value,
        "last_result_at": _time(p.last_result_at),
    }


def _performance_from_json(doc: dict[str, Any]) -> PerformanceMetrics:
    return PerformanceMetrics(
        tasks_completed=doc["tasks_completed"],
        tasks_failed=doc["tasks_failed"],
        tasks_partial=doc["tasks_partial"],
        consecutive_failures=doc["consecutive_failures"],
        total_duration_seconds=doc["total_duration_seconds"],
        quality_total=doc["quality_total"],
        quality_count=doc["quality_count"],
        recent=[TaskOutcome(o) for o in doc["recent"]],
        tier=PerformanceTier(doc["tier"]),
        last_result_at=_parse(doc["last_result_at"]),
    )


def agent_to_json(a: Agent) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "agent_type": a.agent_type.value,
        "primary_capabilities": [c.value for c in a.primary_capabilities],
        "secondary_capabilities": [c.value for c in a.secondary_capabilities],
        "preferred_technologies": list(a.preferred_technologies),
        "preferred_session_types": [s.value for s in a.preferred_session_types],
        "complexity_preference": a.complexity_preference.value if a.complexity_preference else None,
        "executor_kind": a.executor_kind.value,
        "executor_endpoint": a.executor_endpoint,
        "model_identifier": a.model_identifier,
        "max_concurrent_tasks": a.max_concurrent_tasks,
        "status": a.status.value,
        "status_reason": a.status_reason,
        "status_updated_at": _time(a.status_updated_at),
        "performance": _performance_to_json(a.performance),
        "last_heartbeat_at": _time(a.last_heartbeat_at),
        "metadata": a.metadata,
        "registered_by": a.registered_by,
        "version": a.version,
        "created_at": _time(a.created_at),
        "updated_at": _time(a.updated_at),
        "deregistered_at": _time(a.deregistered_at),
    }


def agent_from_json(doc: dict[str, Any]) -> Agent:
    complexity = doc["complexity_preference"]
    return Agent(
        id=doc["id"],
        name=doc["name"],
        agent_type=AgentType(doc["agent_type"]),
        primary_capabilities=tuple(Capability(c) for c in doc["primary_capabilities"]),
        secondary_capabilities=tuple(Capability(c) for c in doc["secondary_capabilities"]),
        preferred_technologies=tuple(doc["preferred_technologies"]),
        preferred_session_types=tuple(SessionType(s) for s in doc["preferred_session_types"]),
        complexity_preference=TaskComplexity(complexity) if complexity else None,
        executor_kind=ExecutorKind(doc["executor_kind"]),
        executor_endpoint=doc["executor_endpoint"],
        model_identifier=doc["model_identifier"],
        max_concurrent_tasks=doc["max_concurrent_tasks"],
        status=AgentStatus(doc["status"]),
        status_reason=doc["status_reason"],
        status_updated_at=_required(doc["status_updated_at"]),
        performance=_performance_from_json(doc["performance"]),
        last_heartbeat_at=_parse(doc["last_heartbeat_at"]),
        metadata=doc["metadata"],
        registered_by=doc["registered_by"],
        version=doc["version"],
        created_at=_required(doc["created_at"]),
        updated_at=_required(doc["updated_at"]),
        deregistered_at=_parse(doc["deregistered_at"]),
    )
