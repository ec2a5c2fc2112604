"""A Session as a JSON document for the `body` column, and back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestrator.session.domain import (
    Checkpoint,
    PermissionPolicy,
    Session,
    SessionLimits,
    SessionMetrics,
    SessionPriority,
    SessionStatus,
    SessionType,
    Usage,
)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _required(value: str) -> datetime:
    return datetime.fromisoformat(value)


def checkpoint_to_json(cp: Checkpoint) -> dict[str, Any]:
    return {
        "session_id": cp.session_id,
        "sequence": cp.sequence,
        "created_at": _time(cp.created_at),
        "data": cp.data,
        "created_by": cp.created_by,
    }


def checkpoint_from_json(doc: dict[str, Any]) -> Checkpoint:
    return Checkpoint(
        session_id=doc["session_id"],
        sequence=doc["sequence"],
        created_at=_required(doc["created_at"]),
        data=doc["data"],
        created_by=doc["created_by"],
    )


def _metrics_to_json(m: SessionMetrics) -> dict[str, Any]:
    u = m.usage
    return {
        "started_at": _time(m.started_at),
        "completed_at": _time(m.completed_at),
        "duration_seconds": m.duration_seconds,
        "retry_count": m.retry_count,
        "checkpoint_count": m.checkpoint_count,
        "usage": {
            "input_tokens": u.input_tokens,
            "output_tokens": u.output_tokens,
            "reasoning_tokens": u.reasoning_tokens,
            "cache_read_tokens": u.cache_read_tokens,
            "cache_write_tokens": u.cache_write_tokens,
            "cost_usd": u.cost_usd,
        },
        "tasks_total": m.tasks_total,
        "tasks_completed": m.tasks_completed,
        "tasks_failed": m.tasks_failed,
        "tasks_skipped": m.tasks_skipped,
    }


def _metrics_from_json(doc: dict[str, Any]) -> SessionMetrics:
    return SessionMetrics(
        started_at=_parse(doc["started_at"]),
        completed_at=_parse(doc["completed_at"]),
        duration_seconds=doc["duration_seconds"],
        retry_count=doc["retry_count"],
        checkpoint_count=doc["checkpoint_count"],
        usage=Usage(**doc["usage"]),
        tasks_total=doc["tasks_total"],
        tasks_completed=doc["tasks_completed"],
        tasks_failed=doc["tasks_failed"],
        tasks_skipped=doc["tasks_skipped"],
    )


def session_to_json(s: Session) -> dict[str, Any]:
    limits = s.limits
    return {
        "id": s.id,
        "title": s.title,
        "description": s.description,
        "session_type": s.session_type.value,
        "priority": s.priority.value,
        "status": s.status.value,
        "status_updated_at": _time(s.status_updated_at),
        "status_reason": s.status_reason,
        "parent_id": s.parent_id,
        "agent_config": s.agent_config,
        "model_identifier": s.model_identifier,
        "initial_prompt": s.initial_prompt,
        "max_duration_seconds": s.max_duration_seconds,
        "tags": s.tags,
        "metadata": s.metadata,
        "created_by": s.created_by,
        "metrics": _metrics_to_json(s.metrics),
        "limits": {
            "max_parallel_tasks": limits.max_parallel_tasks,
            "token_budget": limits.token_budget,
            "cost_budget_usd": limits.cost_budget_usd,
            "max_retries": limits.max_retries,
        },
        "permission_policy": s.permission_policy.value,
        "workspace": s.workspace,
        "latest_checkpoint": (
            checkpoint_to_json(s.latest_checkpoint) if s.latest_checkpoint else None
        ),
        "version": s.version,
        "created_at": _time(s.created_at),
        "updated_at": _time(s.updated_at),
        "deleted_at": _time(s.deleted_at),
        "result": s.result,
        "error": s.error,
    }


def session_from_json(doc: dict[str, Any], child_ids: list[str] | None = None) -> Session:
    latest = doc["latest_checkpoint"]
    return Session(
        id=doc["id"],
        title=doc["title"],
        description=doc["description"],
        session_type=SessionType(doc["session_type"]),
        priority=SessionPriority(doc["priority"]),
        status=SessionStatus(doc["status"]),
        status_updated_at=_required(doc["status_updated_at"]),
        status_reason=doc["status_reason"],
        parent_id=doc["parent_id"],
        child_ids=child_ids or [],
        agent_config=doc["agent_config"],
        model_identifier=doc["model_identifier"],
        initial_prompt=doc["initial_prompt"],
        max_duration_seconds=doc["max_duration_seconds"],
        tags=doc["tags"],
        metadata=doc["metadata"],
        created_by=doc["created_by"],
        metrics=_metrics_from_json(doc["metrics"]),
        limits=SessionLimits(**doc["limits"]),
        permission_policy=PermissionPolicy(doc["permission_policy"]),
        workspace=doc["workspace"],
        latest_checkpoint=checkpoint_from_json(latest) if latest else None,
        version=doc["version"],
        created_at=_required(doc["created_at"]),
        updated_at=_required(doc["updated_at"]),
        deleted_at=_parse(doc["deleted_at"]),
        result=doc["result"],
        error=doc["error"],
    )
