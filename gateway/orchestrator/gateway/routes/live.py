"""`/ws/sessions[/{id}]`, `/ws/agents`: live events from JetStream, resumable by stream sequence.

`/ws/sessions?kinds=session,agent` carries only those aggregates' events.

Protocol: first `{"type": "hello", "last_seq": N}` (the stream's newest sequence when the socket
opened), then one `{"type": "event", "seq", "subject", "event"}` per event, in stream order.
`?since=S` first replays every event after S; without it the feed starts after the hello's
`last_seq`, so nothing published between the hello and the subscription is lost either.
A client that reconnects with `since` = the last `seq` it handled misses nothing.

`/ws/sessions/{id}` carries the session's events, its tasks' and its contexts'. Session and task
subjects name the session, so NATS filters those. Context subjects (`orch.context.<context_id>.…`)
do not: the socket's consumer also receives every other session's context events, and the relay
drops them by the envelope's `session_id`, read without decoding the payload (`envelope`). Cheap
per event, but the traffic grows with all sessions' context writes; a session id in the context
subject (as tasks have) would make it a plain subject filter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Sequence
from uuid import UUID

from fastapi import APIRouter, WebSocket, status
from google.protobuf.message import DecodeError
from starlette.websockets import WebSocketDisconnect

from orchestrator.api.events.v1 import events_pb2
from orchestrator.common.events import SUBJECT_ROOT
from orchestrator.gateway import codec
from orchestrator.gateway.envelope import session_id_of
from orchestrator.gateway.event_feed import EventFeed, StreamEvent
from orchestrator.gateway.resources import get_resources

log = logging.getLogger(__name__)

router = APIRouter()

_SEQUENCE = re.compile(r"[0-9]{1,19}")
_CONTEXT_SUBJECTS = f"{SUBJECT_ROOT}.context.>"

# Decides, before decoding, whether a socket forwards an event its subjects matched.
Keep = Callable[[StreamEvent], bool]


class _Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@router.websocket("/ws/sessions")
async def all_events(websocket: WebSocket) -> None:
    """Every event; `?kinds=session,agent` narrows it to those aggregates' events (a browser
    showing sessions and agents need not receive every task transition)."""
    await websocket.accept()
    try:
        subjects = _subjects_of_kinds(websocket)
    except _Refused as refused:
        await websocket.close(refused.code, refused.reason)
        return
    await _relay(websocket, subjects)


@router.websocket("/ws/sessions/{session_id}")
async def session_events(websocket: WebSocket, session_id: str) -> None:
    """The session's own events, its tasks' and its contexts' (see the module's note)."""
    await websocket.accept()
    try:
        sid = str(UUID(session_id))
    except ValueError:
        await websocket.close(status.WS_1008_POLICY_VIOLATION, "session id must be a UUID")
        return
    subjects = [
        f"{SUBJECT_ROOT}.session.{sid}.>",
        f"{SUBJECT_ROOT}.task.{sid}.>",
        _CONTEXT_SUBJECTS,
    ]
    await _relay(websocket, subjects, _contexts_of(sid))


@router.websocket("/ws/agents")
async def agent_events(websocket: WebSocket) -> None:
    """Every agent's events: registration, status, heartbeat expiry, track record."""
    await websocket.accept()
    await _relay(websocket, [f"{SUBJECT_ROOT}.agent.>"])


_KINDS = ("session", "task", "agent", "context")


def _subjects_of_kinds(websocket: WebSocket) -> list[str]:
    raw = websocket.query_params.get("kinds")
    if raw is None:
        return [f"{SUBJECT_ROOT}.>"]
    kinds = [kind.strip() for kind in raw.split(",") if kind.strip()]
    unknown = sorted(set(kinds) - set(_KINDS))
    if not kinds or unknown:
        reason = f"kinds must be some of {', '.join(_KINDS)}; got {raw!r}"
        raise _Refused(status.WS_1008_POLICY_VIOLATION, reason[:120])
    return [f"{SUBJECT_ROOT}.{kind}.>" for kind in _KINDS if kind in kinds]


def _contexts_of(session_id: str) -> Keep:
    """Keeps every event but other sessions' context events."""
    prefix = _CONTEXT_SUBJECTS.removesuffix(">")

    def keep(item: StreamEvent) -> bool:
        return not item.subject.startswith(prefix) or session_id_of(item.data) == session_id

    return keep


def _keep_all(item: StreamEvent) -> bool:
    return True


async def _relay(websocket: WebSocket, subjects: Sequence[str], keep: Keep = _keep_all) -> None:
    try:
        since = _since(websocket)
        feed = _feed(websocket)
        last_seq = await _last_sequence(feed)
    except _Refused as refused:
        await websocket.close(refused.code, refused.reason)
        return
    await websocket.send_json({"type": "hello", "last_seq": last_seq})
    start = (last_seq if since is None else since) + 1
    pump = asyncio.create_task(_pump(websocket, feed, subjects, start, keep))
    listener = asyncio.create_task(_until_disconnect(websocket))
    try:
        done, _ = await asyncio.wait({pump, listener}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Also on server shutdown (this handler cancelled): the consumer must not outlive us.
        for task in (pump, listener):
            task.cancel()
        await asyncio.gather(pump, listener, return_exceptions=True)
    if listener in done or isinstance(pump.exception(), WebSocketDisconnect):
        return  # the client hung up
    log.warning("event relay stopped: %r", pump.exception())
    with contextlib.suppress(Exception):
        await websocket.close(status.WS_1011_INTERNAL_ERROR, "event stream interrupted")


def _since(websocket: WebSocket) -> int | None:
    raw = websocket.query_params.get("since")
    if raw is None:
        return None
    if not _SEQUENCE.fullmatch(raw):
        raise _Refused(status.WS_1008_POLICY_VIOLATION, "since must be a stream sequence (>= 0)")
    return int(raw)


def _feed(websocket: WebSocket) -> EventFeed:
    feed = get_resources(websocket).events
    if feed is None:
        raise _Refused(status.WS_1011_INTERNAL_ERROR, "the gateway has no event stream")
    return feed


async def _last_sequence(feed: EventFeed) -> int:
    try:
        return await feed.last_sequence()
    except Exception as exc:
        log.warning("event stream unavailable: %r", exc)
        raise _Refused(status.WS_1011_INTERNAL_ERROR, "event stream unavailable") from exc


async def _pump(
    websocket: WebSocket, feed: EventFeed, subjects: Sequence[str], start: int, keep: Keep
) -> None:
    async with feed.follow(subjects, start) as events:
        async for item in events:
            if not keep(item):
                continue
            event = events_pb2.Event()
            try:
                event.ParseFromString(item.data)
            except DecodeError:
                log.warning("skipped undecodable event at seq %d (%s)", item.seq, item.subject)
                continue
            await websocket.send_json(
                {
                    "type": "event",
                    "seq": item.seq,
                    "subject": item.subject,
                    "event": codec.message_to_json(event),
                }
            )


async def _until_disconnect(websocket: WebSocket) -> None:
    """Clients only listen; reading is how a hang-up is noticed (anything sent is ignored)."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
