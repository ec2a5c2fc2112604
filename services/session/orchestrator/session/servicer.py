"""SessionService over gRPC: proto in, use case, proto out. Errors map in the interceptor."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import grpc
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.session.v1 import session_pb2 as pb
from orchestrator.api.session.v1 import session_pb2_grpc
from orchestrator.common.protoconv import from_struct
from orchestrator.session.domain import (
    PermissionPolicy,
    Session,
    SessionPriority,
    SessionStatus,
    SessionType,
)
from orchestrator.session.repository import SessionFilter
from orchestrator.session.service import SessionService, parse_session_id
from orchestrator.session.wire import (
    checkpoint_to_proto,
    enum_from_proto,
    limits_from_proto,
    session_to_proto,
    usage_from_proto,
)

if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[Any, Any]


def _expected(request: Any) -> int | None:
    return int(request.expected_version) if request.HasField("expected_version") else None


def _budgets(request: pb.ResumeSessionRequest | pb.RetrySessionRequest) -> dict[str, Any]:
    """The budgets a resume or retry sets; those left unset are not changed."""
    return {
        name: getattr(request, name)
        for name in ("token_budget", "cost_budget_usd")
        if request.HasField(name)
    }


def _enum_list(kind: Any, values: Any, field: str) -> tuple[str, ...]:
    return tuple(v.value for n in values if (v := enum_from_proto(kind, n, field)) is not None)


class SessionServicer(session_pb2_grpc.SessionServiceServicer):
    def __init__(self, service: SessionService, nc: NATS) -> None:
        self._service = service
        self._nc = nc

    def _out(self, session: Session) -> pb.Session:
        return session_to_proto(session, self._service.now())

    async def CreateSession(self, request: pb.CreateSessionRequest, context: Context) -> Any:
        r = request
        session = await self._service.create(
            session_id=r.session_id or None,
            title=r.title,
            description=r.description,
            session_type=enum_from_proto(SessionType, r.session_type, "session_type")
            or SessionType.EXECUTION,
            priority=enum_from_proto(SessionPriority, r.priority, "priority")
            or SessionPriority.MEDIUM,
            parent_id=parse_session_id(r.parent_id, "parent_id") if r.parent_id else None,
            agent_config=dict(r.agent_config),
            model_identifier=r.model_identifier,
            initial_prompt=r.initial_prompt,
            max_duration_seconds=r.max_duration_seconds,
            tags=list(r.tags),
            metadata=from_struct(r.metadata),
            created_by=r.created_by,
            limits=limits_from_proto(r.limits),
            permission_policy=enum_from_proto(
                PermissionPolicy, r.permission_policy, "permission_policy"
            )
            or PermissionPolicy.ESCALATE,
            workspace=r.workspace,
        )
        return pb.CreateSessionResponse(session=self._out(session))

    async def GetSession(self, request: pb.GetSessionRequest, context: Context) -> Any:
        return pb.GetSessionResponse(session=self._out(await self._service.get(request.session_id)))

    async def ListSessions(self, request: pb.ListSessionsRequest, context: Context) -> Any:
        r = request
        f = SessionFilter(
            statuses=_enum_list(SessionStatus, r.statuses, "statuses"),
            session_types=_enum_list(SessionType, r.session_types, "session_types"),
            priorities=_enum_list(SessionPriority, r.priorities, "priorities"),
            tags=tuple(r.tags),
            parent_id=parse_session_id(r.parent_id, "parent_id") if r.parent_id else None,
            created_by=r.created_by or None,
        )
        page = await self._service.list_sessions(f, r.page.page_size, r.page.page_token)
        return pb.ListSessionsResponse(
            sessions=[self._out(s) for s in page.items],
            page=common_pb2.PageResponse(next_page_token=page.next_token, total_size=page.total),
        )

    async def _act(self, request: Any, action: Callable[[Session, datetime], Any]) -> pb.Session:
        session, _ = await self._service.change(request.session_id, _expected(request), action)
        return self._out(session)

    async def StartSession(self, request: pb.StartSessionRequest, context: Context) -> Any:
        done = await self._service.root_completed(request.session_id)
        out = await self._act(
            request, lambda s, now: s.start(now, actor=request.actor, work_done=done)
        )
        return pb.StartSessionResponse(session=out)

    async def QueueSession(self, request: pb.QueueSessionRequest, context: Context) -> Any:
        out = await self._act(request, lambda s, now: s.queue(now, actor=request.actor))
        return pb.QueueSessionResponse(session=out)

    async def PauseSession(self, request: pb.PauseSessionRequest, context: Context) -> Any:
        r = request
        out = await self._act(r, lambda s, now: s.pause(now, reason=r.reason, actor=r.actor))
        return pb.PauseSessionResponse(session=out)

    async def ResumeSession(self, request: pb.ResumeSessionRequest, context: Context) -> Any:
        r, budgets = request, _budgets(request)
        out = await self._act(r, lambda s, now: s.resume(now, actor=r.actor, **budgets))
        return pb.ResumeSessionResponse(session=out)

    async def StopSession(self, request: pb.StopSessionRequest, context: Context) -> Any:
        r = request
        out = await self._act(r, lambda s, now: s.stop(now, reason=r.reason, actor=r.actor))
        return pb.StopSessionResponse(session=out)

    async def CancelSession(self, request: pb.CancelSessionRequest, context: Context) -> Any:
        r = request
        out = await self._act(r, lambda s, now: s.cancel(now, reason=r.reason, actor=r.actor))
        return pb.CancelSessionResponse(session=out)

    async def CompleteSession(self, request: pb.CompleteSessionRequest, context: Context) -> Any:
        r = request
        result = from_struct(r.result) if r.HasField("result") else None
        out = await self._act(
            r, lambda s, now: s.complete(now, result, partial=r.partial, actor=r.actor)
        )
        return pb.CompleteSessionResponse(session=out)

    async def FailSession(self, request: pb.FailSessionRequest, context: Context) -> Any:
        r = request
        out = await self._act(r, lambda s, now: s.fail(now, r.error, actor=r.actor))
        return pb.FailSessionResponse(session=out)

    async def DegradeSession(self, request: pb.DegradeSessionRequest, context: Context) -> Any:
        r = request
        out = await self._act(r, lambda s, now: s.degrade(now, r.reason, actor=r.actor))
        return pb.DegradeSessionResponse(session=out)

    async def RetrySession(self, request: pb.RetrySessionRequest, context: Context) -> Any:
        session, resume_from = await self._service.change(
            request.session_id,
            _expected(request),
            lambda s, now: s.retry(now, actor=request.actor, **_budgets(request)),
        )
        return pb.RetrySessionResponse(
            session=self._out(session),
            resume_from=checkpoint_to_proto(resume_from) if resume_from else None,
        )

    async def AddCheckpoint(self, request: pb.AddCheckpointRequest, context: Context) -> Any:
        r = request
        session, checkpoint = await self._service.add_checkpoint(
            r.session_id, _expected(r), from_struct(r.data), r.created_by, r.sequence
        )
        return pb.AddCheckpointResponse(
            session=self._out(session), checkpoint=checkpoint_to_proto(checkpoint)
        )

    async def ListCheckpoints(self, request: pb.ListCheckpointsRequest, context: Context) -> Any:
        r = request
        page = await self._service.list_checkpoints(
            r.session_id, r.page.page_size, r.page.page_token
        )
        return pb.ListCheckpointsResponse(
            checkpoints=[checkpoint_to_proto(c) for c in page.items],
            page=common_pb2.PageResponse(next_page_token=page.next_token, total_size=page.total),
        )

    async def RecordSessionUsage(
        self, request: pb.RecordSessionUsageRequest, context: Context
    ) -> Any:
        r = request
        counts = {
            name: getattr(r, name) or None
            for name in ("tasks_total", "tasks_completed", "tasks_failed", "tasks_skipped")
        }
        session = await self._service.record_usage(
            r.session_id, r.report_id, usage_from_proto(r.usage), counts
        )
        return pb.RecordSessionUsageResponse(session=self._out(session))

    async def DeleteSession(self, request: pb.DeleteSessionRequest, context: Context) -> Any:
        out = await self._act(request, lambda s, now: s.delete(now, actor=request.actor))
        return pb.DeleteSessionResponse(session=out)

    async def WatchSession(
        self, request: pb.WatchSessionRequest, context: Context
    ) -> AsyncIterator[pb.WatchSessionResponse]:
        """The current snapshot, then one per event. Subscribes before reading the snapshot so
        no change between the two is missed; events not newer than the snapshot are skipped."""
        ident = parse_session_id(request.session_id)
        queue: asyncio.Queue[Msg] = asyncio.Queue(maxsize=1000)
        sub = await self._nc.subscribe(f"orch.session.{ident}.>", cb=queue.put)
        try:
            session = await self._service.get(ident)
            seen = session.version
            yield pb.WatchSessionResponse(session=self._out(session))
            while True:
                event = events_pb2.Event.FromString((await queue.get()).data)
                if event.aggregate_version <= seen:
                    continue
                seen = event.aggregate_version
                yield pb.WatchSessionResponse(session=event.session.session, event_type=event.type)
                if event.type == "session.deleted":
                    return
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
