"""ContextService over gRPC: proto in, use case, proto out. Errors map in the interceptor."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.context.v1 import context_pb2 as pb
from orchestrator.api.context.v1 import context_pb2_grpc
from orchestrator.api.events.v1 import events_pb2
from orchestrator.common.errors import NotFound
from orchestrator.common.protoconv import from_struct
from orchestrator.context.domain import (
    ContextEventType,
    ContextScope,
    MergeStrategy,
    parse_id,
    parse_path,
)
from orchestrator.context.domain.paths import related
from orchestrator.context.repository import HistoryFilter
from orchestrator.context.service import ContextService
from orchestrator.context.wire import (
    change_to_proto,
    context_to_proto,
    diff_entries,
    enum_from_proto,
    operations_from_proto,
    value_to_proto,
    without_data,
)

if TYPE_CHECKING:
    RpcContext = grpc.aio.ServicerContext[Any, Any]

_ENDINGS = {ContextEventType.DELETED.value, ContextEventType.EXPIRED.value}
# Events that change no data, hence no version; the others are sent when newer than what the
# watcher has and touching the watched path.
_ALWAYS_SENT = {ContextEventType.SHARED.value, *_ENDINGS}


def _expected(request: Any) -> int | None:
    return int(request.expected_version) if request.HasField("expected_version") else None


def _page(page: Any) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=page.next_token, total_size=page.total)


class ContextServicer(context_pb2_grpc.ContextServiceServicer):
    def __init__(self, service: ContextService, nc: NATS) -> None:
        self._service = service
        self._nc = nc

    async def CreateContext(self, request: pb.CreateContextRequest, context: RpcContext) -> Any:
        r = request
        created = await self._service.create(
            scope=enum_from_proto(ContextScope, r.scope, "scope"),
            owner_id=r.owner_id,
            name=r.name,
            data=from_struct(r.data),
            ttl_seconds=r.ttl_seconds,
            actor=r.actor,
            context_id=r.context_id,
        )
        return pb.CreateContextResponse(context=context_to_proto(created))

    async def GetContext(self, request: pb.GetContextRequest, context: RpcContext) -> Any:
        if not request.path:
            found = await self._service.get(request.context_id)
            return pb.GetContextResponse(context=context_to_proto(found))
        found, value = await self._service.read(request.context_id, request.path)
        return pb.GetContextResponse(
            context=without_data(context_to_proto(found)), value=value_to_proto(value)
        )

    async def ListContexts(self, request: pb.ListContextsRequest, context: RpcContext) -> Any:
        r = request
        page = await self._service.list_contexts(
            enum_from_proto(ContextScope, r.scope, "scope"),
            r.owner_id,
            r.owned_only,
            r.page.page_size,
            r.page.page_token,
        )
        return pb.ListContextsResponse(
            contexts=[without_data(context_to_proto(c)) for c in page.items], page=_page(page)
        )

    async def UpdateContext(self, request: pb.UpdateContextRequest, context: RpcContext) -> Any:
        r = request
        updated, changes = await self._service.update(
            r.context_id, _expected(r), operations_from_proto(r.operations), r.changed_by
        )
        return pb.UpdateContextResponse(
            context=context_to_proto(updated), changes=[change_to_proto(c) for c in changes]
        )

    async def DiffContexts(self, request: pb.DiffContextsRequest, context: RpcContext) -> Any:
        first, other, found = await self._service.diff(request.context_id, request.other_context_id)
        return pb.DiffContextsResponse(
            added=diff_entries(found.added),
            removed=diff_entries(found.removed),
            changed=diff_entries(found.changed),
            conflicts=diff_entries(found.conflicts),
            version=first.version,
            other_version=other.version,
        )

    async def MergeContexts(self, request: pb.MergeContextsRequest, context: RpcContext) -> Any:
        """Under MANUAL nothing is written; `context` then shows the target as the merge
        would leave it (its version unchanged), for a person to settle and apply."""
        r = request
        target, outcome = await self._service.merge(
            r.source_context_id,
            r.target_context_id,
            enum_from_proto(MergeStrategy, r.strategy, "strategy"),
            _expected(r),
            r.actor,
        )
        return pb.MergeContextsResponse(
            context=context_to_proto(target, outcome.proposal),
            changes=[change_to_proto(c) for c in outcome.changes],
            conflicts=diff_entries(outcome.conflicts),
            merged=outcome.merged,
        )

    async def ShareContext(self, request: pb.ShareContextRequest, context: RpcContext) -> Any:
        r = request
        shared = await self._service.share(
            r.context_id,
            _expected(r),
            enum_from_proto(ContextScope, r.scope, "scope"),
            r.owner_id,
            r.actor,
        )
        return pb.ShareContextResponse(context=context_to_proto(shared))

    async def CloneContext(self, request: pb.CloneContextRequest, context: RpcContext) -> Any:
        r = request
        clone = await self._service.clone(
            r.context_id,
            scope=enum_from_proto(ContextScope, r.scope, "scope"),
            owner_id=r.owner_id,
            name=r.name,
            ttl_seconds=r.ttl_seconds,
            actor=r.actor,
            clone_id=r.clone_id,
        )
        return pb.CloneContextResponse(context=context_to_proto(clone))

    async def ListContextHistory(
        self, request: pb.ListContextHistoryRequest, context: RpcContext
    ) -> Any:
        r = request
        f = HistoryFilter(r.path_prefix, r.after_version, r.newest_first)
        page = await self._service.history(r.context_id, f, r.page.page_size, r.page.page_token)
        return pb.ListContextHistoryResponse(
            changes=[change_to_proto(c) for c in page.items], page=_page(page)
        )

    async def DeleteContext(self, request: pb.DeleteContextRequest, context: RpcContext) -> Any:
        r = request
        deleted = await self._service.delete(r.context_id, _expected(r), r.actor)
        return pb.DeleteContextResponse(context=context_to_proto(deleted))

    async def WatchContext(
        self, request: pb.WatchContextRequest, context: RpcContext
    ) -> AsyncIterator[pb.WatchContextResponse]:
        """The current snapshot, then one per event. Subscribes before reading the snapshot so
        no change between the two is missed; events not newer than it are skipped."""
        ident = parse_id(request.context_id, "context_id")
        prefix = request.path_prefix
        parse_path(prefix, "path_prefix")
        queue: asyncio.Queue[Msg] = asyncio.Queue(maxsize=1000)
        sub = await self._nc.subscribe(f"orch.context.{ident}.>", cb=queue.put)
        try:
            current = await self._service.get(ident)
            seen = current.version
            yield pb.WatchContextResponse(context=context_to_proto(current))
            while True:
                event = events_pb2.Event.FromString((await queue.get()).data)
                changes = [c for c in event.context.changes if related(c.path, prefix)]
                if event.type not in _ALWAYS_SENT and (
                    event.aggregate_version <= seen or not changes
                ):
                    continue
                seen = max(seen, event.aggregate_version)
                snapshot = await self._with_data(ident, event.context.context)
                yield pb.WatchContextResponse(
                    context=snapshot, changes=changes, event_type=event.type
                )
                if event.type in _ENDINGS:
                    return
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _with_data(self, ident: str, snapshot: pb.Context) -> pb.Context:
        """Events leave out large documents; then the watcher gets the current one."""
        if snapshot.HasField("data") or snapshot.HasField("deleted_at"):
            return snapshot
        try:
            return context_to_proto(await self._service.get(ident))
        except NotFound:
            return snapshot
