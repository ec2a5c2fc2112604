"""What a worker learns of a task's session, and how it records the task's checkpoints and
shares what it learnt there.

The session's fields an executor needs (title, prompt, permission policy, repository) do not
change while it runs, so they are read once per session and kept; the session's default
context is shared and changes between tasks, so it is read for every task. Values a task shares
are set in that context, which is created (with an id derived from the session's, so
concurrent workers make one) when the session has none.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import struct_pb2

from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.context.v1 import context_pb2
from orchestrator.api.session.v1 import session_pb2
from orchestrator.api.task.v1 import task_pb2
from orchestrator.common.ids import default_context_id
from orchestrator.common.protoconv import from_struct, struct
from orchestrator.worker.executors.base import SessionBrief

if TYPE_CHECKING:
    from orchestrator.api.context.v1.context_pb2_grpc import ContextServiceAsyncStub
    from orchestrator.api.session.v1.session_pb2_grpc import SessionServiceAsyncStub

log = logging.getLogger(__name__)

RPC_TIMEOUT_SECONDS = 5.0
CACHED_SESSIONS = 256
POLICIES = {
    session_pb2.PERMISSION_POLICY_ALLOW: "allow",
    session_pb2.PERMISSION_POLICY_DENY: "deny",
    session_pb2.PERMISSION_POLICY_ESCALATE: "escalate",
}


def brief_from_session(session: session_pb2.Session, context: Mapping[str, Any]) -> SessionBrief:
    return SessionBrief(
        id=session.id,
        title=session.title,
        prompt=session.initial_prompt,
        # Unset is the session service's default, which asks a human.
        permission_policy=POLICIES.get(session.permission_policy, "escalate"),
        repository=session.workspace,
        context=dict(context),
        model=session.model_identifier,
    )


class SessionBriefs:
    """`brief_of` and `checkpoint_of` for the TaskRunner, over the session and context services."""

    def __init__(
        self, sessions: SessionServiceAsyncStub, contexts: ContextServiceAsyncStub, actor: str
    ) -> None:
        self._sessions = sessions
        self._contexts = contexts
        self._actor = actor
        self._cache: OrderedDict[str, session_pb2.Session] = OrderedDict()
        # Session -> the id of its default context, once known (it never changes).
        self._context_ids: OrderedDict[str, str] = OrderedDict()

    async def brief_of(self, task: task_pb2.Task) -> SessionBrief | None:
        if not task.session_id:
            return None
        session = await self._session(task.session_id)
        try:
            context = await self._context(task.session_id)
        except grpc.aio.AioRpcError as exc:  # the task can run without the shared notes
            log.warning("context of session %s unreadable: %s", task.session_id, exc.details())
            context = {}
        return brief_from_session(session, context)

    async def checkpoint_of(self, task: task_pb2.Task, label: str, data: Any) -> None:
        payload = {**(dict(data) if isinstance(data, Mapping) else {"value": data})}
        payload.update(task_id=task.id, label=label)
        request = session_pb2.AddCheckpointRequest(
            session_id=task.session_id, data=struct(payload), created_by=self._actor
        )
        await self._sessions.AddCheckpoint(request, timeout=RPC_TIMEOUT_SECONDS)

    async def share(self, task: task_pb2.Task, values: Mapping[str, Any]) -> None:
        """Sets each value at its dot path of the session's default context, in one update
        (all or none). Paths only this task writes cannot conflict; a path two tasks write keeps
        the later write, and the context's history keeps both."""
        if not task.session_id or not values:
            return
        operations = [
            context_pb2.ContextOperation(
                operation_type=context_pb2.CONTEXT_OPERATION_TYPE_SET,
                path=path,
                value=_value(value),
            )
            for path, value in values.items()
        ]
        context_id = await self._default_context_id(task.session_id)
        request = context_pb2.UpdateContextRequest(
            context_id=context_id, operations=operations, changed_by=self._actor
        )
        try:
            await self._contexts.UpdateContext(request, timeout=RPC_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:  # deleted meanwhile: look again next time
                self._context_ids.pop(task.session_id, None)
            raise

    async def _default_context_id(self, session_id: str) -> str:
        known = self._context_ids.get(session_id)
        if known is not None:
            return known
        found = await self._default_context(session_id)
        if found is not None:
            context_id = found.id
        else:
            request = context_pb2.CreateContextRequest(
                scope=context_pb2.CONTEXT_SCOPE_SESSION,
                owner_id=session_id,
                context_id=default_context_id(session_id),
                actor=self._actor,
            )
            reply = await self._contexts.CreateContext(request, timeout=RPC_TIMEOUT_SECONDS)
            context_id = reply.context.id
        self._remember(session_id, context_id)
        return context_id

    def _remember(self, session_id: str, context_id: str) -> None:
        self._context_ids[session_id] = context_id
        if len(self._context_ids) > CACHED_SESSIONS:
            self._context_ids.popitem(last=False)

    async def _session(self, session_id: str) -> session_pb2.Session:
        cached = self._cache.get(session_id)
        if cached is not None:
            self._cache.move_to_end(session_id)
            return cached
        request = session_pb2.GetSessionRequest(session_id=session_id)
        session = (await self._sessions.GetSession(request, timeout=RPC_TIMEOUT_SECONDS)).session
        self._cache[session_id] = session
        if len(self._cache) > CACHED_SESSIONS:
            self._cache.popitem(last=False)
        return session

    async def _context(self, session_id: str) -> dict[str, Any]:
        """The data of the session's default (unnamed) context; empty when it has none."""
        context_id = self._context_ids.get(session_id)
        if context_id is None:
            default = await self._default_context(session_id)
            if default is None:
                return {}
            context_id = default.id
            self._remember(session_id, context_id)
        # Lists leave the data out; the document is read by id.
        try:
            found = await self._contexts.GetContext(
                context_pb2.GetContextRequest(context_id=context_id), timeout=RPC_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:  # deleted meanwhile: look again next time
                self._context_ids.pop(session_id, None)
            raise
        return from_struct(found.context.data)

    async def _default_context(self, session_id: str) -> context_pb2.Context | None:
        """The session's default context (the oldest unnamed one it owns), if any."""
        request = context_pb2.ListContextsRequest(
            page=common_pb2.PageRequest(page_size=50),
            scope=context_pb2.CONTEXT_SCOPE_SESSION,
            owner_id=session_id,
            owned_only=True,
        )
        reply = await self._contexts.ListContexts(request, timeout=RPC_TIMEOUT_SECONDS)
        return next((c for c in reply.contexts if not c.name), None)


def _value(value: Any) -> struct_pb2.Value:
    holder = struct_pb2.Struct()
    holder.update({"v": value})
    return holder.fields["v"]
