"""Request bodies and queries of the task routes, and the response shapes /docs shows.

Field names are task.proto's; the codec maps them onto the request messages. The gateway checks
types and enum names only: transitions, leases and graph rules are the task service's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import Field, create_model

from orchestrator.api.task.v1 import task_pb2 as pb
from orchestrator.gateway.routes.common import (
    ACTOR,
    CapabilityName,
    ComplexityName,
    PageQuery,
    StrictBody,
    page_model,
)
from orchestrator.gateway.schema import enum_literal, message_model

if TYPE_CHECKING:
    TaskStatusName = str
    TaskPriorityName = str
    DependencyTypeName = str
    TemplateName = str
else:
    TaskStatusName = enum_literal(pb.TaskStatus.DESCRIPTOR)
    TaskPriorityName = enum_literal(pb.TaskPriority.DESCRIPTOR)
    DependencyTypeName = enum_literal(pb.DependencyType.DESCRIPTOR)
    TemplateName = enum_literal(pb.DecompositionTemplate.DESCRIPTOR)

_VERSION = "Refused with 409 (`aborted`) unless the task is at this version."
_TOKEN = "The run's fencing token from assign; a stale one is 409 (`failed_precondition`)"


class EstimateBody(StrictBody):
    optimistic_hours: float
    most_likely_hours: float
    pessimistic_hours: float


class UsageBody(StrictBody):
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    cost_usd: float | None = None


class WorkspaceChangesBody(StrictBody):
    branch: str | None = None
    base_commit: str | None = None
    head_commit: str | None = None
    diff: str | None = Field(None, description="Unified diff of head against base")
    changed_files: list[str] | None = None


class CreateTaskBody(StrictBody):
    session_id: UUID
    title: str
    parent_id: UUID | None = None
    description: str | None = None
    task_type: str | None = Field(None, description="Free-form: `design`, `test`, …")
    priority: TaskPriorityName | None = Field(None, description="Default normal")
    complexity: ComplexityName | None = Field(None, description="Default: from the estimate")
    required_capabilities: list[CapabilityName] | None = None
    technologies: list[str] | None = None
    estimate: EstimateBody | None = Field(None, description="PERT hours; default from complexity")
    input: dict[str, Any] | None = Field(None, description='Executor input, e.g. {"command": …}')
    metadata: dict[str, Any] | None = None
    max_attempts: int | None = Field(None, description="Default 3")
    requires_approval: bool | None = None
    depends_on: list[UUID] | None = Field(None, description="finish_to_start on these tasks")
    actor: str | None = Field(None, description=ACTOR)
    task_id: UUID | None = Field(
        None, description="Client-chosen id: repeating the same create returns the same task"
    )


class PlannedTaskBody(CreateTaskBody):
    session_id: UUID | None = Field(None, description="The plan's session (may be left out)")  # type: ignore[assignment]


class PlanBody(StrictBody):
    tasks: list[PlannedTaskBody] = Field(
        ...,
        min_length=1,
        max_length=5000,
        description="In order: a task may name an earlier one as parent_id or in depends_on",
    )


class TaskQuery(PageQuery):
    session_id: UUID | None = None
    parent_id: UUID | None = None
    roots_only: bool = Field(False, description="Only tasks without a parent")
    status: list[TaskStatusName] = Field(default_factory=list, description="Any of these")
    assigned_agent_id: UUID | None = Field(None, description="Tasks leased to this agent")


class TaskActionBody(StrictBody):
    expected_version: int | None = Field(None, description=_VERSION)
    actor: str | None = Field(None, description=ACTOR)


class TaskReasonBody(TaskActionBody):
    reason: str | None = None


class DecomposeTaskBody(TaskActionBody):
    template: TemplateName | None = Field(None, description="Default auto")
    max_depth: int | None = Field(None, description="Levels below this task; default 3, max 5")


class AddDependencyBody(TaskActionBody):
    depends_on_task_id: UUID = Field(description="The predecessor")
    dependency_type: DependencyTypeName | None = Field(None, description="Default finish_to_start")
    lag_hours: float | None = Field(None, description="Delay (negative: lead) after it")


class RemoveDependencyBody(TaskActionBody):
    depends_on_task_id: UUID | None = Field(None, description="Here or in the query")


class AssignTaskBody(TaskActionBody):
    agent_id: UUID | None = Field(None, description="Omit to route through the agent service")
    lease_seconds: int | None = Field(None, description="Default: the service's")


class LeaseBody(TaskActionBody):
    fencing_token: int = Field(description=_TOKEN)


class CompleteTaskBody(LeaseBody):
    result: dict[str, Any] | None = None
    usage: UsageBody | None = None
    changes: WorkspaceChangesBody | None = None
    quality_score: float | None = Field(None, description="0..1, for the agent's track record")


class FailTaskBody(LeaseBody):
    error: str | None = None
    retryable: bool | None = Field(
        None, description="Omitted = false: fail for good; true retries while attempts remain"
    )
    usage: UsageBody | None = None


class RenewLeaseBody(LeaseBody):
    lease_seconds: int | None = Field(None, description="Default: the service's")


class ReleaseTaskBody(TaskReasonBody):
    fencing_token: int | None = Field(
        None, description="Omitted or 0 releases whatever lease is current (operators)"
    )


class ApproveTaskBody(TaskActionBody):
    comment: str | None = None


class RejectTaskBody(TaskActionBody):
    comment: str = Field(description="What the agent must change; joins the next run's prompt")


# Response shapes: documentation only, the routes return the codec's JSON unvalidated.
TaskJson = message_model(pb.Task.DESCRIPTOR)
TaskPageJson = page_model("TaskPage", "tasks", TaskJson)
DecomposedJson = message_model(pb.DecomposeTaskResponse.DESCRIPTOR)
PlanJson = message_model(pb.CreateTasksResponse.DESCRIPTOR)
DependencyAddedJson = message_model(pb.AddDependencyResponse.DESCRIPTOR)
GraphJson = message_model(pb.GetGraphResponse.DESCRIPTOR)
FailedTaskJson = create_model("FailedTask", __base__=TaskJson, will_retry=(bool, ...))
