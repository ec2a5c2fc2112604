"""An in-memory TaskService stub: enough behaviour for the gateway's task routes.

The lifecycle actions share one handler (`__getattr__`): each moves the task to a fixed status,
as the real transitions would on the happy path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import uuid4

import grpc

from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.task.v1 import task_pb2 as pb
from tests.unit.gateway.fakes import RecordingStub, not_found, rpc_error

# The action RPCs and the status each leaves the task in (None: unchanged).
ACTIONS: dict[str, pb.TaskStatus.ValueType | None] = {
    "AssignTask": pb.TASK_STATUS_ASSIGNED,
    "StartTask": pb.TASK_STATUS_IN_PROGRESS,
    "CompleteTask": pb.TASK_STATUS_COMPLETED,
    "FailTask": pb.TASK_STATUS_FAILED,
    "RenewLease": None,
    "ReleaseTask": pb.TASK_STATUS_READY,
    "BlockTask": pb.TASK_STATUS_BLOCKED,
    "PauseTask": pb.TASK_STATUS_PAUSED,
    "ResumeTask": pb.TASK_STATUS_READY,
    "CancelTask": pb.TASK_STATUS_CANCELLED,
    "SkipTask": pb.TASK_STATUS_SKIPPED,
    "ApproveTask": pb.TASK_STATUS_COMPLETED,
    "RejectTask": pb.TASK_STATUS_READY,
}

Rpc = Callable[..., Awaitable[Any]]


class FakeTaskStub(RecordingStub):
    def __init__(self) -> None:
        super().__init__()
        self.tasks: dict[str, pb.Task] = {}

    def _task(self, task_id: str) -> pb.Task:
        if task_id not in self.tasks:
            raise not_found("task", task_id)
        return self.tasks[task_id]

    def _new(self, session_id: str, title: str, parent_id: str = "", task_id: str = "") -> pb.Task:
        task = pb.Task(
            id=task_id or str(uuid4()),
            session_id=session_id,
            parent_id=parent_id,
            title=title,
            status=pb.TASK_STATUS_PENDING,
            priority=pb.TASK_PRIORITY_NORMAL,
            version=1,
        )
        self.tasks[task.id] = task
        return task

    async def CreateTask(
        self, request: pb.CreateTaskRequest, timeout: float | None = None
    ) -> pb.CreateTaskResponse:
        self._record(request)
        task = self._new(request.session_id, request.title, request.parent_id, request.task_id)
        task.priority = request.priority or pb.TASK_PRIORITY_NORMAL
        task.required_capabilities[:] = request.required_capabilities
        task.estimate.CopyFrom(request.estimate)
        task.input.CopyFrom(request.input)
        return pb.CreateTaskResponse(task=task)

    async def GetTask(
        self, request: pb.GetTaskRequest, timeout: float | None = None
    ) -> pb.GetTaskResponse:
        self._record(request)
        return pb.GetTaskResponse(task=self._task(request.task_id))

    async def ListTasks(
        self, request: pb.ListTasksRequest, timeout: float | None = None
    ) -> pb.ListTasksResponse:
        self._record(request)
        tasks = [t for t in self.tasks.values() if t.session_id == request.session_id]
        page = common_pb2.PageResponse(total_size=len(tasks))
        return pb.ListTasksResponse(tasks=tasks, page=page)

    async def DecomposeTask(
        self, request: pb.DecomposeTaskRequest, timeout: float | None = None
    ) -> pb.DecomposeTaskResponse:
        self._record(request)
        parent = self._task(request.task_id)
        subtasks = [self._new(parent.session_id, name, parent.id) for name in ("design", "build")]
        parent.child_ids[:] = [task.id for task in subtasks]
        edge = pb.Dependency(predecessor_id=subtasks[0].id, successor_id=subtasks[1].id)
        subtasks[1].dependencies.append(edge)
        return pb.DecomposeTaskResponse(task=parent, subtasks=subtasks, dependencies=[edge])

    async def AddDependency(
        self, request: pb.AddDependencyRequest, timeout: float | None = None
    ) -> pb.AddDependencyResponse:
        self._record(request)
        task = self._task(request.task_id)
        before = self._task(request.depends_on_task_id)
        if any(edge.predecessor_id == task.id for edge in before.dependencies):
            raise rpc_error(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"dependency would close a cycle: {task.id} → {before.id} → {task.id}",
                error_code="dependency_cycle",
            )
        edge = pb.Dependency(
            predecessor_id=before.id,
            successor_id=task.id,
            dependency_type=request.dependency_type or pb.DEPENDENCY_TYPE_FINISH_TO_START,
        )
        task.dependencies.append(edge)
        return pb.AddDependencyResponse(task=task, dependency=edge)

    async def RemoveDependency(
        self, request: pb.RemoveDependencyRequest, timeout: float | None = None
    ) -> pb.RemoveDependencyResponse:
        self._record(request)
        task = self._task(request.task_id)
        kept = [e for e in task.dependencies if e.predecessor_id != request.depends_on_task_id]
        del task.dependencies[:]
        task.dependencies.extend(kept)
        return pb.RemoveDependencyResponse(task=task)

    async def GetGraph(
        self, request: pb.GetGraphRequest, timeout: float | None = None
    ) -> pb.GetGraphResponse:
        self._record(request)
        tasks = [t for t in self.tasks.values() if t.session_id == request.session_id]
        ids = [task.id for task in tasks]
        reply = pb.GetGraphResponse(
            nodes=[pb.GraphNode(task_id=t.id, title=t.title, status=t.status) for t in tasks],
            edges=[edge for task in tasks for edge in task.dependencies],
            topological_order=ids,
            critical_path=pb.CriticalPath(task_ids=ids, expected_hours=3.5),
        )
        reply.expected_finish_at.FromJsonString("2025-03-01T15:30:00Z")
        return reply

    def __getattr__(self, name: str) -> Rpc:
        if name not in ACTIONS:
            raise AttributeError(name)

        async def act(request: Any, timeout: float | None = None) -> Any:
            self._record(request)
            task = self._task(request.task_id)
            status = ACTIONS[name]
            if status is not None:
                task.status = status
                task.version += 1
            if name == "AssignTask":
                task.fencing_token += 1
                task.assigned_agent_id = request.agent_id or "routed-agent"
            reply = getattr(pb, f"{name}Response")(task=task)
            if name == "FailTask":
                reply.will_retry = request.retryable
            return reply

        return act
