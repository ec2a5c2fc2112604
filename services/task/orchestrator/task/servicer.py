"""TaskService over gRPC: proto in, use case, proto out. Errors map in the interceptor."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import grpc
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.task.v1 import task_pb2 as pb
from orchestrator.api.task.v1 import task_pb2_grpc
from orchestrator.common.errors import InvalidArgument
from orchestrator.common.grpc_server import known_error, status_of
from orchestrator.common.protoconv import from_struct, timestamp
from orchestrator.task.domain import (
    Capability,
    DecompositionTemplate,
    DependencyType,
    Peer,
    Task,
    TaskComplexity,
    TaskPriority,
    TaskStatus,
    finish_blockers,
    parse_uuid,
)
from orchestrator.task.repository import TaskFilter
from orchestrator.task.service import Action, TaskService
from orchestrator.task.wire import (
    changes_from_proto,
    dependency_to_proto,
    enum_from_proto,
    enum_list,
    estimate_from_proto,
    graph_to_proto,
    task_to_proto,
    usage_from_proto,
)

if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[Any, Any]

log = logging.getLogger(__name__)

# The calls a Work stream carries (its request's oneof `call`), by the servicer method each is.
_WORK_CALLS = {
    "start": "StartTask",
    "complete": "CompleteTask",
    "fail": "FailTask",
    "renew": "RenewLease",
    "release": "ReleaseTask",
}
# Events queued for one watcher before the stream falls behind the server's pace.
WATCH_BUFFER = 10_000


def _expected(request: Any) -> int | None:
    return int(request.expected_version) if request.HasField("expected_version") else None


def _quality(request: pb.CompleteTaskRequest) -> float | None:
    if not request.HasField("quality_score"):
        return None
    if not 0.0 <= request.quality_score <= 1.0:
        raise InvalidArgument("quality_score must be 0..1", field="quality_score")
    return request.quality_score


def _create_fields(r: pb.CreateTaskRequest) -> dict[str, Any]:
    """What Task.create takes from a CreateTaskRequest (but the session)."""
    return {
        "task_id": r.task_id or None,
        "parent_id": parse_uuid(r.parent_id, "parent_id") if r.parent_id else None,
        "title": r.title,
        "description": r.description,
        "task_type": r.task_type,
        "priority": enum_from_proto(TaskPriority, r.priority, "priority") or TaskPriority.NORMAL,
        "complexity": enum_from_proto(TaskComplexity, r.complexity, "complexity"),
        "required_capabilities": enum_list(
            Capability, r.required_capabilities, "required_capabilities"
        ),
        "technologies": list(r.technologies),
        "estimate": estimate_from_proto(r.estimate) if r.HasField("estimate") else None,
        "input": from_struct(r.input),
        "metadata": from_struct(r.metadata),
        "max_attempts": r.max_attempts,
        "requires_approval": r.requires_approval,
        "depends_on": list(r.depends_on),
        "created_by": r.actor,
    }


class TaskServicer(task_pb2_grpc.TaskServiceServicer):
    def __init__(self, service: TaskService, nc: NATS) -> None:
        self._service = service
        self._nc = nc

    async def _act(self, request: Any, action: Action[Any], **options: bool) -> pb.Task:
        task, _ = await self._service.change(request.task_id, _expected(request), action, **options)
        return task_to_proto(task)

    async def CreateTask(self, request: pb.CreateTaskRequest, context: Context) -> Any:
        task = await self._service.create(session_id=request.session_id, **_create_fields(request))
        return pb.CreateTaskResponse(task=task_to_proto(task))

    async def CreateTasks(self, request: pb.CreateTasksRequest, context: Context) -> Any:
        specs = []
        for number, r in enumerate(request.tasks):
            if r.session_id and r.session_id != request.session_id:
                raise InvalidArgument(
                    f"tasks[{number}].session_id differs from the request's session_id",
                    field="tasks",
                )
            specs.append(_create_fields(r))
        tasks = await self._service.create_many(request.session_id, specs)
        return pb.CreateTasksResponse(tasks=[task_to_proto(t) for t in tasks])

    async def GetTask(self, request: pb.GetTaskRequest, context: Context) -> Any:
        return pb.GetTaskResponse(task=task_to_proto(await self._service.get(request.task_id)))

    async def ListTasks(self, request: pb.ListTasksRequest, context: Context) -> Any:
        r = request
        f = TaskFilter(
            session_id=parse_uuid(r.session_id, "session_id") if r.session_id else None,
            parent_id=parse_uuid(r.parent_id, "parent_id") if r.parent_id else None,
            roots_only=r.roots_only,
            statuses=tuple(s.value for s in enum_list(TaskStatus, r.statuses, "statuses")),
            assigned_agent_id=r.assigned_agent_id or None,
        )
        page = await self._service.list_tasks(f, r.page.page_size, r.page.page_token)
        return pb.ListTasksResponse(
            tasks=[task_to_proto(t) for t in page.items],
            page=common_pb2.PageResponse(next_page_token=page.next_token, total_size=page.total),
        )

    async def DecomposeTask(self, request: pb.DecomposeTaskRequest, context: Context) -> Any:
        r = request
        template = enum_from_proto(DecompositionTemplate, r.template, "template")
        task, subtasks, dependencies = await self._service.decompose(
            r.task_id, _expected(r), template or DecompositionTemplate.AUTO, r.max_depth, r.actor
        )
        return pb.DecomposeTaskResponse(
            task=task_to_proto(task),
            subtasks=[task_to_proto(s) for s in subtasks],
            dependencies=[dependency_to_proto(d) for d in dependencies],
        )

    async def AddDependency(self, request: pb.AddDependencyRequest, context: Context) -> Any:
        r = request
        kind = enum_from_proto(DependencyType, r.dependency_type, "dependency_type")
        task, dependency = await self._service.add_dependency(
            r.task_id,
            _expected(r),
            r.depends_on_task_id,
            kind or DependencyType.FINISH_TO_START,
            r.lag_hours if r.HasField("lag_hours") else None,
            r.actor,
        )
        return pb.AddDependencyResponse(
            task=task_to_proto(task), dependency=dependency_to_proto(dependency)
        )

    async def RemoveDependency(self, request: pb.RemoveDependencyRequest, context: Context) -> Any:
        r = request
        task = await self._service.remove_dependency(
            r.task_id, _expected(r), r.depends_on_task_id, r.actor
        )
        return pb.RemoveDependencyResponse(task=task_to_proto(task))

    async def GetGraph(self, request: pb.GetGraphRequest, context: Context) -> Any:
        return await self._service.graph(request.session_id, graph_to_proto)

    async def AssignTask(self, request: pb.AssignTaskRequest, context: Context) -> Any:
        r = request
        task = await self._service.assign(
            r.task_id, _expected(r), r.agent_id, r.lease_seconds, r.actor
        )
        return pb.AssignTaskResponse(
            task=task_to_proto(task),
            fencing_token=task.fencing_token,
            lease_expires_at=timestamp(task.lease_expires_at),
        )

    async def StartTask(self, request: pb.StartTaskRequest, context: Context) -> Any:
        r = request
        out = await self._act(
            r,
            lambda t, now, _: t.start(
                now, r.fencing_token, actor=r.actor, lease_seconds=r.lease_seconds
            ),
        )
        return pb.StartTaskResponse(task=out)

    async def CompleteTask(self, request: pb.CompleteTaskRequest, context: Context) -> Any:
        r = request
        result = from_struct(r.result) if r.HasField("result") else None
        changes = changes_from_proto(r.changes) if r.HasField("changes") else None
        quality = _quality(r)

        def complete(t: Task, now: datetime, peers: Mapping[str, Peer]) -> None:
            if quality is not None:
                # The Task message has no field for it; the agent service reads it from here.
                t.metadata["quality_score"] = quality
            t.complete(
                now,
                r.fencing_token,
                result=result,
                usage=usage_from_proto(r.usage),
                changes=changes,
                finish_blockers=finish_blockers(t, peers),
                actor=r.actor,
            )

        return pb.CompleteTaskResponse(task=await self._act(r, complete, with_peers=True))

    async def FailTask(self, request: pb.FailTaskRequest, context: Context) -> Any:
        r = request
        task, will_retry = await self._service.change(
            r.task_id,
            _expected(r),
            lambda t, now, _: t.fail(
                now,
                r.fencing_token,
                r.error,
                retryable=r.retryable,
                usage=usage_from_proto(r.usage),
                actor=r.actor,
            ),
        )
        return pb.FailTaskResponse(task=task_to_proto(task), will_retry=will_retry)

    async def RenewLease(self, request: pb.RenewLeaseRequest, context: Context) -> Any:
        r = request
        task, expires = await self._service.change(
            r.task_id,
            _expected(r),
            lambda t, now, _: t.renew(now, r.fencing_token, r.lease_seconds),
            always_save=True,
        )
        return pb.RenewLeaseResponse(task=task_to_proto(task), lease_expires_at=timestamp(expires))

    async def ReleaseTask(self, request: pb.ReleaseTaskRequest, context: Context) -> Any:
        r = request
        out = await self._act(
            r, lambda t, now, _: t.release(now, r.fencing_token, r.reason, actor=r.actor)
        )
        return pb.ReleaseTaskResponse(task=out)

    async def Work(
        self, request_iterator: AsyncIterator[pb.WorkRequest], context: Context
    ) -> AsyncIterator[pb.WorkResponse]:
        """Answers each call of the stream as soon as it is done; calls run concurrently (the
        group commit writes those that arrive together in one transaction). A worker that hangs
        up leaves its calls in flight to finish; their answers go nowhere, and the fencing
        token makes the worker's repeat of one harmless."""
        answers: asyncio.Queue[pb.WorkResponse | None] = asyncio.Queue()
        running: set[asyncio.Task[None]] = set()

        async def answer(request: pb.WorkRequest) -> None:
            answers.put_nowait(await self._work_one(request, context))

        async def read() -> None:
            try:
                async for request in request_iterator:
                    call = asyncio.create_task(answer(request))
                    running.add(call)
                    call.add_done_callback(running.discard)
                if running:
                    await asyncio.wait(set(running))
            finally:
                answers.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            while (reply := await answers.get()) is not None:
                yield reply
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def _work_one(self, request: pb.WorkRequest, context: Context) -> pb.WorkResponse:
        kind = request.WhichOneof("call")
        try:
            if kind is None:
                raise InvalidArgument("a Work request names no call", field="call")
            # The unary twin of the call; its reply goes in the answer's field of the same name.
            reply = await getattr(self, _WORK_CALLS[kind])(getattr(request, kind), context)
            return pb.WorkResponse(id=request.id, **{kind: reply})
        except Exception as exc:
            # A server the call needed being down is UNAVAILABLE: the worker tries again, and
            # fencing makes a repeat harmless.
            if (known := known_error(exc)) is None:
                log.exception("work call %s (%s) failed", request.id, kind)
                error = pb.WorkError(
                    code=grpc.StatusCode.INTERNAL.value[0], message="internal error"
                )
            else:
                error = pb.WorkError(
                    code=status_of(known).value[0],
                    message=known.message,
                    error_code=known.code,
                    field=known.field or "",
                )
        return pb.WorkResponse(id=request.id, error=error)

    async def BlockTask(self, request: pb.BlockTaskRequest, context: Context) -> Any:
        r = request
        out = await self._act(r, lambda t, now, _: t.block(now, r.reason, actor=r.actor))
        return pb.BlockTaskResponse(task=out)

    async def PauseTask(self, request: pb.PauseTaskRequest, context: Context) -> Any:
        r = request
        out = await self._act(r, lambda t, now, _: t.pause(now, r.reason, actor=r.actor))
        return pb.PauseTaskResponse(task=out)

    async def ResumeTask(self, request: pb.ResumeTaskRequest, context: Context) -> Any:
        r = request
        out = await self._act(r, lambda t, now, _: t.resume(now, actor=r.actor))
        return pb.ResumeTaskResponse(task=out)

    async def CancelTask(self, request: pb.CancelTaskRequest, context: Context) -> Any:
        r = request
        out = await self._act(r, lambda t, now, _: t.cancel(now, r.reason, actor=r.actor))
        return pb.CancelTaskResponse(task=out)

    async def SkipTask(self, request: pb.SkipTaskRequest, context: Context) -> Any:
        r = request
        out = await self._act(r, lambda t, now, _: t.skip(now, r.reason, actor=r.actor))
        return pb.SkipTaskResponse(task=out)

    async def ApproveTask(self, request: pb.ApproveTaskRequest, context: Context) -> Any:
        r = request
        out = await self._act(
            r,
            lambda t, now, peers: t.approve(now, r.actor, r.comment, finish_blockers(t, peers)),
            with_peers=True,
        )
        return pb.ApproveTaskResponse(task=out)

    async def RejectTask(self, request: pb.RejectTaskRequest, context: Context) -> Any:
        r = request
        out = await self._act(r, lambda t, now, _: t.reject(now, r.actor, r.comment))
        return pb.RejectTaskResponse(task=out)

    async def WatchTasks(
        self, request: pb.WatchTasksRequest, context: Context
    ) -> AsyncIterator[pb.WatchTasksResponse]:
        """The current tasks, then one snapshot per event. Subscribes before reading the
        snapshot so no change between the two is missed; events not newer than what was
        already sent for a task are skipped."""
        session_id = parse_uuid(request.session_id, "session_id")
        wanted = sorted({parse_uuid(i, "task_ids") for i in request.task_ids})
        queue: asyncio.Queue[Msg] = asyncio.Queue(maxsize=WATCH_BUFFER)
        sub = await self._nc.subscribe(f"orch.task.{session_id}.>", cb=queue.put)
        try:
            seen: dict[str, int] = {}
            for task in await self._service.session_tasks(session_id, wanted):
                seen[task.id] = task.version
                yield pb.WatchTasksResponse(task=task_to_proto(task))
            while True:
                event = events_pb2.Event.FromString((await queue.get()).data)
                ident = event.aggregate_id
                if (wanted and ident not in wanted) or event.aggregate_version <= seen.get(
                    ident, 0
                ):
                    continue
                seen[ident] = event.aggregate_version
                yield pb.WatchTasksResponse(task=event.task.task, event_type=event.type)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
