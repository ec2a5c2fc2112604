"""`/api/v1/tasks` and `/api/v1/sessions/{id}/graph`: JSON in → one TaskService call → JSON out.

The lifecycle actions (`/tasks/{id}/start`, …) are in `task_actions`.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from orchestrator.api.task.v1 import task_pb2 as pb
from orchestrator.common.errors import InvalidArgument
from orchestrator.gateway import codec
from orchestrator.gateway.errors import ERROR_RESPONSES
from orchestrator.gateway.resources import ClientsDep
from orchestrator.gateway.routes.common import (
    Json,
    call,
    call_with,
    documented,
    fields,
    json_reply,
    page_json,
    page_request,
)
from orchestrator.gateway.routes.task_models import (
    AddDependencyBody,
    CreateTaskBody,
    DecomposedJson,
    DecomposeTaskBody,
    DependencyAddedJson,
    GraphJson,
    PlanBody,
    PlanJson,
    RemoveDependencyBody,
    TaskJson,
    TaskPageJson,
    TaskQuery,
)

router = APIRouter(prefix="/api/v1", tags=["tasks"], responses=ERROR_RESPONSES)

TaskId = Annotated[UUID, Path(description="The task's UUID")]
SessionId = Annotated[UUID, Path(description="The session's UUID")]

_TASK = documented(TaskJson)


@router.post("/tasks", status_code=201, response_model=None, responses=documented(TaskJson, 201))
async def create_task(body: CreateTaskBody, clients: ClientsDep) -> Json:
    """Creates a pending task (ready once its dependencies allow); 201 with the task."""
    reply = await call_with(clients, clients.task.CreateTask, pb.CreateTaskRequest(), fields(body))
    return codec.message_to_json(reply.task)


@router.post(
    "/sessions/{session_id}/tasks",
    summary="Plans many tasks of a session at once, all or none",
    status_code=201,
    response_model=None,
    responses=documented(PlanJson, 201),
)
async def plan_tasks(session_id: SessionId, body: PlanBody, clients: ClientsDep) -> Json:
    """Creates the tasks in one transaction, in order; a task may name an earlier one of the
    plan as its parent or in depends_on. Repeating the same plan returns what is stored."""
    data = {"session_id": str(session_id), "tasks": [fields(t) for t in body.tasks]}
    reply = await call_with(clients, clients.task.CreateTasks, pb.CreateTasksRequest(), data)
    return {"tasks": [codec.message_to_json(t) for t in reply.tasks]}


@router.get("/tasks", response_model=None, responses=documented(TaskPageJson))
async def list_tasks(query: Annotated[TaskQuery, Query()], clients: ClientsDep) -> JSONResponse:
    """Tasks matching every filter given (repeat `status` to allow several)."""
    data = query.model_dump(mode="json", exclude={"status", "page_size", "page_token"})
    request = codec.message_from_json(
        {**data, "statuses": query.status, "page": page_request(query)}, pb.ListTasksRequest()
    )
    reply = await call(clients, clients.task.ListTasks, request)
    return json_reply(page_json("tasks", reply.tasks, reply.page))


@router.get("/tasks/{task_id}", response_model=None, responses=_TASK)
async def get_task(task_id: TaskId, clients: ClientsDep) -> Json:
    reply = await call(clients, clients.task.GetTask, pb.GetTaskRequest(task_id=str(task_id)))
    return codec.message_to_json(reply.task)


@router.post(
    "/tasks/{task_id}/decompose",
    summary="Splits a pending|ready task into subtasks, recursively",
    response_model=None,
    responses=documented(DecomposedJson),
)
async def decompose_task(
    task_id: TaskId, clients: ClientsDep, body: DecomposeTaskBody | None = None
) -> Json:
    """`{"task", "subtasks", "dependencies"}`: the task (now a parent), every task created
    (parents before children) and the dependencies between them."""
    request = pb.DecomposeTaskRequest(task_id=str(task_id))
    reply = await call_with(clients, clients.task.DecomposeTask, request, fields(body))
    return codec.message_to_json(reply)


@router.post(
    "/tasks/{task_id}/dependencies",
    status_code=201,
    summary="Makes the task wait for another of its session",
    response_model=None,
    responses=documented(DependencyAddedJson, 201),
)
async def add_dependency(task_id: TaskId, body: AddDependencyBody, clients: ClientsDep) -> Json:
    """201 with `{"task", "dependency"}`. One that would close a cycle is 409
    (`failed_precondition`) and the message names the cycle."""
    request = pb.AddDependencyRequest(task_id=str(task_id))
    reply = await call_with(clients, clients.task.AddDependency, request, fields(body))
    return codec.message_to_json(reply)


@router.delete("/tasks/{task_id}/dependencies", response_model=None, responses=_TASK)
async def remove_dependency(
    task_id: TaskId,
    clients: ClientsDep,
    depends_on_task_id: UUID | None = None,
    expected_version: int | None = None,
    actor: str | None = None,
    body: RemoveDependencyBody | None = None,
) -> Json:
    """The fields go in the query or in a JSON body (not the same one in both, differently).
    Returns the successor task."""
    query = RemoveDependencyBody(
        depends_on_task_id=depends_on_task_id, expected_version=expected_version, actor=actor
    )
    data = _merged(fields(query), fields(body))
    if "depends_on_task_id" not in data:
        raise InvalidArgument("depends_on_task_id is required", field="depends_on_task_id")
    request = pb.RemoveDependencyRequest(task_id=str(task_id))
    reply = await call_with(clients, clients.task.RemoveDependency, request, data)
    return codec.message_to_json(reply.task)


def _merged(query: Json, body: Json) -> Json:
    for key in query.keys() & body.keys():
        if query[key] != body[key]:
            raise InvalidArgument(f"{key} differs between the query and the body", field=key)
    return {**query, **body}


@router.get(
    "/sessions/{session_id}/graph",
    summary="The session's task graph with its critical path and expected finish",
    response_model=None,
    responses=documented(GraphJson),
)
async def get_graph(session_id: SessionId, clients: ClientsDep) -> JSONResponse:
    """`nodes`, `edges` (the dependencies), `topological_order`, `ready_task_ids`,
    `critical_path` (`task_ids`, `expected_hours`, `sigma_hours`), `expected_finish_at`."""
    request = pb.GetGraphRequest(session_id=str(session_id))
    reply = await call(clients, clients.task.GetGraph, request)
    return json_reply(codec.message_to_json(reply))
