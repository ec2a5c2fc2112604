"""A Task as a JSON document for the `body` column, and back.

`child_ids` and `dependencies` are not in the body: they are rows of their own (`parent_id` of
other tasks, the dependencies table), read back beside it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestrator.task.domain import (
    Capability,
    Dependency,
    DependencyType,
    Estimate,
    Hold,
    Review,
    Task,
    TaskComplexity,
    TaskPriority,
    TaskStatus,
    Usage,
    WorkspaceChanges,
)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _required(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _flat(value: Any) -> dict[str, Any]:
    """The fields of a slotted value object, by name: `asdict` without its deep copy (the
    document is serialised at once, and what the fields hold is immutable or JSON)."""
    return {name: getattr(value, name) for name in value.__slots__}


def task_to_json(t: Task) -> dict[str, Any]:
    return {
        "id": t.id,
        "session_id": t.session_id,
        "parent_id": t.parent_id,
        "depth": t.depth,
        "title": t.title,
        "description": t.description,
        "task_type": t.task_type,
        "status": t.status.value,
        "status_reason": t.status_reason,
        "status_updated_at": _time(t.status_updated_at),
        "priority": t.priority.value,
        "complexity": t.complexity.value,
        "required_capabilities": [c.value for c in t.required_capabilities],
        "technologies": t.technologies,
        "estimate": _flat(t.estimate),
        "input": t.input,
        "metadata": t.metadata,
        "assigned_agent_id": t.assigned_agent_id,
        "last_agent_id": t.last_agent_id,
        "lease_expires_at": _time(t.lease_expires_at),
        "fencing_token": t.fencing_token,
        "attempt_count": t.attempt_count,
        "max_attempts": t.max_attempts,
        "next_attempt_at": _time(t.next_attempt_at),
        "failed_agent_ids": t.failed_agent_ids,
        "requires_approval": t.requires_approval,
        "hold": t.hold.value,
        "reviews": [{**_flat(r), "at": _time(r.at)} for r in t.reviews],
        "result": t.result,
        "changes": _flat(t.changes) if t.changes else None,
        "error": t.error,
        "usage": _flat(t.usage),
        "created_by": t.created_by,
        "version": t.version,
        "created_at": _time(t.created_at),
        "updated_at": _time(t.updated_at),
        "assigned_at": _time(t.assigned_at),
        "started_at": _time(t.started_at),
        "completed_at": _time(t.completed_at),
    }


def task_from_json(
    doc: dict[str, Any], child_ids: list[str], dependencies: list[Dependency]
) -> Task:
    changes = doc["changes"]
    return Task(
        id=doc["id"],
        session_id=doc["session_id"],
        parent_id=doc["parent_id"],
        child_ids=child_ids,
        depth=doc["depth"],
        title=doc["title"],
        description=doc["description"],
        task_type=doc["task_type"],
        status=TaskStatus(doc["status"]),
        status_reason=doc["status_reason"],
        status_updated_at=_required(doc["status_updated_at"]),
        priority=TaskPriority(doc["priority"]),
        complexity=TaskComplexity(doc["complexity"]),
        required_capabilities=[Capability(c) for c in doc["required_capabilities"]],
        technologies=doc["technologies"],
        estimate=Estimate(**doc["estimate"]),
        dependencies=dependencies,
        input=doc["input"],
        metadata=doc["metadata"],
        assigned_agent_id=doc["assigned_agent_id"],
        # Absent from tasks stored before the field existed.
        last_agent_id=doc.get("last_agent_id", ""),
        lease_expires_at=_parse(doc["lease_expires_at"]),
        fencing_token=doc["fencing_token"],
        attempt_count=doc["attempt_count"],
        max_attempts=doc["max_attempts"],
        next_attempt_at=_parse(doc["next_attempt_at"]),
        failed_agent_ids=doc["failed_agent_ids"],
        requires_approval=doc["requires_approval"],
        hold=Hold(doc["hold"]),
        reviews=[Review(**{**r, "at": _required(r["at"])}) for r in doc["reviews"]],
        result=doc["result"],
        changes=WorkspaceChanges(**changes) if changes else None,
        error=doc["error"],
        usage=Usage(**doc["usage"]),
        created_by=doc["created_by"],
        version=doc["version"],
        created_at=_required(doc["created_at"]),
        updated_at=_required(doc["updated_at"]),
        assigned_at=_parse(doc["assigned_at"]),
        started_at=_parse(doc["started_at"]),
        completed_at=_parse(doc["completed_at"]),
    )


def dependency_from_json(doc: dict[str, Any]) -> Dependency:
    """One element of the `deps` array the repository's task query aggregates."""
    return Dependency(
        predecessor_id=doc["predecessor_id"],
        successor_id=doc["successor_id"],
        dependency_type=DependencyType(doc["dependency_type"]),
        lag_hours=doc["lag_hours"],
        created_at=_required(doc["created_at"]),
    )
