"""An in-memory ContextService stub: enough behaviour for the gateway's context routes.

Documents are kept as plain dicts and dot paths walk their top-level objects; diffs and merges
compare top-level keys only, which is all the route tests need.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import grpc
from google.protobuf import json_format, struct_pb2

from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.context.v1 import context_pb2 as pb
from tests.unit.gateway.fakes import RecordingStub, not_found, rpc_error

_MISSING = object()


def _value(item: Any) -> struct_pb2.Value:
    return json_format.ParseDict(item, struct_pb2.Value())


def _lookup(data: dict[str, Any], path: str) -> Any:
    found: Any = data
    for key in path.split("."):
        if not isinstance(found, dict) or key not in found:
            return _MISSING
        found = found[key]
    return found


class FakeContextStub(RecordingStub):
    def __init__(self) -> None:
        super().__init__()
        self.contexts: dict[str, pb.Context] = {}
        self.history: dict[str, list[pb.ContextChange]] = {}

    def _context(self, context_id: str) -> pb.Context:
        if context_id not in self.contexts:
            raise not_found("context", context_id)
        return self.contexts[context_id]

    def _store(self, context: pb.Context) -> pb.Context:
        self.contexts[context.id] = context
        self.history.setdefault(context.id, [])
        return context

    @staticmethod
    def _check_version(context: pb.Context, request: Any) -> None:
        if request.HasField("expected_version") and request.expected_version != context.version:
            raise rpc_error(
                grpc.StatusCode.ABORTED,
                f"context {context.id} is at version {context.version}, not the expected "
                f"version {request.expected_version}; re-read it and try again",
                error_code="aborted",
            )

    async def CreateContext(
        self, request: pb.CreateContextRequest, timeout: float | None = None
    ) -> pb.CreateContextResponse:
        self._record(request)
        context = pb.Context(
            id=request.context_id or str(uuid4()),
            scope=request.scope,
            owner_id=request.owner_id,
            name=request.name,
            data=request.data,
            version=1,
        )
        return pb.CreateContextResponse(context=self._store(context))

    async def GetContext(
        self, request: pb.GetContextRequest, timeout: float | None = None
    ) -> pb.GetContextResponse:
        self._record(request)
        context = self._context(request.context_id)
        if not request.path:
            return pb.GetContextResponse(context=context)
        found = _lookup(json_format.MessageToDict(context.data), request.path)
        if found is _MISSING:
            raise not_found("path", request.path)
        bare = pb.Context()
        bare.CopyFrom(context)
        bare.ClearField("data")
        return pb.GetContextResponse(context=bare, value=_value(found))

    async def ListContexts(
        self, request: pb.ListContextsRequest, timeout: float | None = None
    ) -> pb.ListContextsResponse:
        self._record(request)
        contexts = [c for c in self.contexts.values() if c.owner_id == request.owner_id]
        page = common_pb2.PageResponse(total_size=len(contexts))
        return pb.ListContextsResponse(contexts=contexts, page=page)

    async def UpdateContext(
        self, request: pb.UpdateContextRequest, timeout: float | None = None
    ) -> pb.UpdateContextResponse:
        self._record(request)
        context = self._context(request.context_id)
        self._check_version(context, request)
        data = json_format.MessageToDict(context.data)
        changes = []
        for operation in request.operations:
            old = data.pop(operation.path, _MISSING)
            change = pb.ContextChange(path=operation.path, version=context.version + 1)
            if old is not _MISSING:
                change.old_value.CopyFrom(_value(old))
            if operation.operation_type == pb.CONTEXT_OPERATION_TYPE_SET:
                data[operation.path] = json_format.MessageToDict(operation.value)
                change.new_value.CopyFrom(operation.value)
            changes.append(change)
        context.data.Clear()
        context.data.update(data)
        context.version += 1
        self.history[context.id].extend(changes)
        return pb.UpdateContextResponse(context=context, changes=changes)

    async def DiffContexts(
        self, request: pb.DiffContextsRequest, timeout: float | None = None
    ) -> pb.DiffContextsResponse:
        self._record(request)
        mine = json_format.MessageToDict(self._context(request.context_id).data)
        other = json_format.MessageToDict(self._context(request.other_context_id).data)
        return pb.DiffContextsResponse(
            added=[
                pb.ContextDiffEntry(path=k, other_value=_value(other[k]))
                for k in other.keys() - mine.keys()
            ],
            removed=[
                pb.ContextDiffEntry(path=k, value=_value(mine[k]))
                for k in mine.keys() - other.keys()
            ],
            changed=[
                pb.ContextDiffEntry(path=k, value=_value(mine[k]), other_value=_value(other[k]))
                for k in mine.keys() & other.keys()
                if mine[k] != other[k]
            ],
        )

    async def MergeContexts(
        self, request: pb.MergeContextsRequest, timeout: float | None = None
    ) -> pb.MergeContextsResponse:
        self._record(request)
        source = self._context(request.source_context_id)
        target = self._context(request.target_context_id)
        self._check_version(target, request)
        mine = json_format.MessageToDict(target.data)
        theirs = json_format.MessageToDict(source.data)
        clashes = [k for k in mine.keys() & theirs.keys() if mine[k] != theirs[k]]
        if request.strategy == pb.MERGE_STRATEGY_MANUAL:  # never writes, as the service
            conflicts = [
                pb.ContextDiffEntry(path=k, value=_value(mine[k]), other_value=_value(theirs[k]))
                for k in clashes
            ]
            return pb.MergeContextsResponse(context=target, conflicts=conflicts, merged=False)
        target.data.update(theirs)
        target.version += 1
        return pb.MergeContextsResponse(context=target, merged=True)

    async def ShareContext(
        self, request: pb.ShareContextRequest, timeout: float | None = None
    ) -> pb.ShareContextResponse:
        self._record(request)
        context = self._context(request.context_id)
        context.shared_with.add(scope=request.scope, owner_id=request.owner_id)
        return pb.ShareContextResponse(context=context)

    async def CloneContext(
        self, request: pb.CloneContextRequest, timeout: float | None = None
    ) -> pb.CloneContextResponse:
        self._record(request)
        origin = self._context(request.context_id)
        clone = pb.Context(
            id=request.clone_id or str(uuid4()),
            scope=request.scope,
            owner_id=request.owner_id,
            data=origin.data,
            version=1,
            cloned_from_id=origin.id,
            cloned_from_version=origin.version,
        )
        return pb.CloneContextResponse(context=self._store(clone))

    async def ListContextHistory(
        self, request: pb.ListContextHistoryRequest, timeout: float | None = None
    ) -> pb.ListContextHistoryResponse:
        self._record(request)
        self._context(request.context_id)
        changes = self.history[request.context_id]
        page = common_pb2.PageResponse(total_size=len(changes))
        return pb.ListContextHistoryResponse(changes=changes, page=page)

    async def DeleteContext(
        self, request: pb.DeleteContextRequest, timeout: float | None = None
    ) -> pb.DeleteContextResponse:
        self._record(request)
        context = self._context(request.context_id)
        self._check_version(context, request)
        del self.contexts[context.id]
        context.deleted_at.FromJsonString("2025-03-01T13:00:00Z")
        return pb.DeleteContextResponse(context=context)
