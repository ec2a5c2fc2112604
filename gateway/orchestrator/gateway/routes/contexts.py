"""`/api/v1/contexts`: each route is JSON in → one ContextService call → JSON out."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query
from google.protobuf import struct_pb2

from orchestrator.api.context.v1 import context_pb2 as pb
from orchestrator.gateway import codec
from orchestrator.gateway.errors import ERROR_RESPONSES
from orchestrator.gateway.resources import ClientsDep
from orchestrator.gateway.routes.common import (
    Json,
    PageQuery,
    call,
    call_with,
    documented,
    fields,
    page_json,
    page_request,
)
from orchestrator.gateway.routes.context_models import (
    CloneBody,
    ContextJson,
    ContextPageJson,
    ContextQuery,
    ContextValueJson,
    CreateContextBody,
    DiffJson,
    HistoryPageJson,
    HistoryQuery,
    MergeBody,
    MergedJson,
    OperationBody,
    ShareBody,
    UpdateContextBody,
    UpdatedContextJson,
)

router = APIRouter(prefix="/api/v1/contexts", tags=["contexts"], responses=ERROR_RESPONSES)

ContextId = Annotated[UUID, Path(description="The context's UUID")]

_CONTEXT = documented(ContextJson)


@router.post("", status_code=201, response_model=None, responses=documented(ContextJson, 201))
async def create_context(body: CreateContextBody, clients: ClientsDep) -> Json:
    """Creates a context at version 1; 201 with it."""
    request = pb.CreateContextRequest()
    reply = await call_with(clients, clients.context.CreateContext, request, fields(body))
    return codec.message_to_json(reply.context)


@router.get("", response_model=None, responses=documented(ContextPageJson))
async def list_contexts(query: Annotated[ContextQuery, Query()], clients: ClientsDep) -> Json:
    """Contexts of one scope and owner, those shared with it included; without their data."""
    data = query.model_dump(mode="json", exclude=set(PageQuery.model_fields))
    request = codec.message_from_json(
        {**data, "page": page_request(query)}, pb.ListContextsRequest()
    )
    reply = await call(clients, clients.context.ListContexts, request)
    return page_json("contexts", reply.contexts, reply.page)


@router.post(
    "/merge",
    summary="Merges the source context into the target",
    response_model=None,
    responses=documented(MergedJson),
)
async def merge_contexts(body: MergeBody, clients: ClientsDep) -> Json:
    """`{"context", "changes", "conflicts", "merged"}`: the target after the merge. Under `manual`
    conflicts are returned and nothing is written (`merged` false)."""
    request = pb.MergeContextsRequest()
    reply = await call_with(clients, clients.context.MergeContexts, request, fields(body))
    return codec.message_to_json(reply)


@router.get("/{context_id}", response_model=None, responses=documented(ContextValueJson))
async def get_context(
    context_id: ContextId,
    clients: ClientsDep,
    path: Annotated[str, Query(description="A dot path (`config.model`); empty = all")] = "",
) -> Json:
    """The whole context; with `path`, the context without its data plus `path` and `value`
    (404 when nothing is at that path)."""
    request = pb.GetContextRequest(context_id=str(context_id))
    reply = await call_with(clients, clients.context.GetContext, request, {"path": path})
    found = codec.message_to_json(reply)
    if not path:
        return dict(found["context"])
    return {**found["context"], "path": path, "value": found["value"]}


@router.patch(
    "/{context_id}",
    summary="Applies set/delete operations as one new version",
    response_model=None,
    responses=documented(UpdatedContextJson),
)
async def update_context(
    context_id: ContextId, body: UpdateContextBody, clients: ClientsDep
) -> Json:
    """All operations or none. Returns the context plus a top-level `changes` (one per path that
    really changed). A stale `expected_version` is 409 (`aborted`) and changes nothing."""
    request = pb.UpdateContextRequest(context_id=str(context_id))
    codec.message_from_json(
        {"expected_version": body.expected_version, "changed_by": body.changed_by}, request
    )
    for index, operation in enumerate(body.operations):
        _add_operation(request, operation, index)
    reply = await call(clients, clients.context.UpdateContext, request)
    return {
        **codec.message_to_json(reply.context),
        "changes": [codec.message_to_json(change) for change in reply.changes],
    }


def _add_operation(request: pb.UpdateContextRequest, operation: OperationBody, index: int) -> None:
    where = f"operations.{index}"
    item = request.operations.add(path=operation.path)
    codec.message_from_json({"operation_type": operation.op}, item, path=where)
    if operation.op != "set":
        return
    if operation.value is None:
        item.value.null_value = struct_pb2.NULL_VALUE  # the codec reads null as "unset"
    else:
        codec.message_from_json({"value": operation.value}, item, path=where)


@router.delete("/{context_id}", response_model=None, responses=_CONTEXT)
async def delete_context(
    context_id: ContextId,
    clients: ClientsDep,
    expected_version: int | None = None,
    actor: str | None = None,
) -> Json:
    """Soft delete: it leaves Get and List, its history stays. Returns it as it was deleted."""
    request = pb.DeleteContextRequest(context_id=str(context_id))
    data = {"expected_version": expected_version, "actor": actor}
    reply = await call_with(clients, clients.context.DeleteContext, request, data)
    return codec.message_to_json(reply.context)


@router.get(
    "/{context_id}/diff/{other_context_id}",
    summary="What changes from this context to the other, path by path",
    response_model=None,
    responses=documented(DiffJson),
)
async def diff_contexts(
    context_id: ContextId,
    other_context_id: Annotated[UUID, Path(description="The context compared against")],
    clients: ClientsDep,
) -> Json:
    """`added`, `removed`, `changed`, `conflicts` (entries of `path`, `value`, `other_value`,
    `base_value`), `version`, `other_version`."""
    request = pb.DiffContextsRequest(
        context_id=str(context_id), other_context_id=str(other_context_id)
    )
    reply = await call(clients, clients.context.DiffContexts, request)
    return codec.message_to_json(reply)


@router.get(
    "/{context_id}/history",
    summary="The context's changes, oldest first unless `newest_first`",
    response_model=None,
    responses=documented(HistoryPageJson),
)
async def list_history(
    context_id: ContextId, query: Annotated[HistoryQuery, Query()], clients: ClientsDep
) -> Json:
    data = query.model_dump(mode="json", exclude=set(PageQuery.model_fields))
    request = pb.ListContextHistoryRequest(context_id=str(context_id))
    reply = await call_with(
        clients, clients.context.ListContextHistory, request, {**data, "page": page_request(query)}
    )
    return page_json("changes", reply.changes, reply.page)


@router.post(
    "/{context_id}/share",
    summary="Lets another scope and owner use this very context (no copy)",
    response_model=None,
    responses=_CONTEXT,
)
async def share_context(context_id: ContextId, body: ShareBody, clients: ClientsDep) -> Json:
    request = pb.ShareContextRequest(context_id=str(context_id))
    reply = await call_with(clients, clients.context.ShareContext, request, fields(body))
    return codec.message_to_json(reply.context)


@router.post(
    "/{context_id}/clone",
    status_code=201,
    summary="Copies the data into a new, independent context",
    response_model=None,
    responses=documented(ContextJson, 201),
)
async def clone_context(context_id: ContextId, body: CloneBody, clients: ClientsDep) -> Json:
    """201 with the new context; it remembers its origin as the base of later diffs and merges."""
    request = pb.CloneContextRequest(context_id=str(context_id))
    reply = await call_with(clients, clients.context.CloneContext, request, fields(body))
    return codec.message_to_json(reply.context)
