"""The live event sockets against an in-memory feed: hello, replay, filters, refusals, cleanup."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from orchestrator.api.context.v1 import context_pb2
from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.session.v1 import session_pb2 as pb
from orchestrator.gateway.envelope import session_id_of
from orchestrator.gateway.event_feed import StreamEvent, subject_matches

if TYPE_CHECKING:
    from tests.unit.gateway.conftest import FakeFeed, OpenSocket

pytestmark = pytest.mark.timeout(30)

SID = "0b9c4c1e-8f1a-4f57-9a58-8f3d8c7a2f10"
OTHER = "5d1f3a8e-0c3b-4e7d-8f6a-2b9e1c4d7a60"


def _session_event(seq: int, session_id: str, status: pb.SessionStatus.ValueType) -> StreamEvent:
    event = events_pb2.Event(
        event_id=f"e{seq}",
        type="session.started",
        aggregate_type="session",
        aggregate_id=session_id,
        session_id=session_id,
        session=events_pb2.SessionEvent(session=pb.Session(id=session_id, status=status)),
    )
    return StreamEvent(seq, f"orch.session.{session_id}.started", event.SerializeToString())


@pytest.fixture
def history(feed: FakeFeed) -> FakeFeed:
    feed.events = [
        _session_event(1, SID, pb.SESSION_STATUS_PENDING),
        _session_event(2, OTHER, pb.SESSION_STATUS_PENDING),
        StreamEvent(
            3, f"orch.task.{SID}.t1.created", events_pb2.Event(event_id="e3").SerializeToString()
        ),
        _session_event(4, SID, pb.SESSION_STATUS_RUNNING),
    ]
    return feed


async def test_hello_then_only_new_events_without_since(
    open_socket: OpenSocket, history: FakeFeed
) -> None:
    socket = await open_socket("/ws/sessions")
    assert await socket.receive_json() == {"type": "hello", "last_seq": 4}
    assert history.followed == [(["orch.>"], 5)]
    await socket.disconnect()
    assert history.released.is_set()


async def test_kinds_narrow_the_socket_to_those_aggregates(
    open_socket: OpenSocket, history: FakeFeed
) -> None:
    socket = await open_socket("/ws/sessions", "kinds=agent,session&since=0")
    await socket.receive_json()
    assert history.followed == [(["orch.session.>", "orch.agent.>"], 1)]
    seqs = [(await socket.receive_json())["seq"] for _ in range(3)]
    assert seqs == [1, 2, 4]  # the task event (3) is left out
    await socket.disconnect()


@pytest.mark.parametrize("kinds", ["", "session,nope", "tasks"])
async def test_unknown_kinds_close_with_1008(open_socket: OpenSocket, kinds: str) -> None:
    socket = await open_socket("/ws/sessions", f"kinds={kinds}")
    closed = await socket.next_message()
    assert closed["type"] == "websocket.close" and closed["code"] == 1008
    assert "kinds" in closed["reason"]
    await socket.finished()


async def test_since_replays_every_event_after_it(
    open_socket: OpenSocket, history: FakeFeed
) -> None:
    socket = await open_socket("/ws/sessions", "since=1")
    await socket.receive_json()
    seqs = [(await socket.receive_json())["seq"] for _ in range(3)]
    assert seqs == [2, 3, 4]
    await socket.disconnect()


async def test_a_session_socket_gets_its_session_and_task_events(
    open_socket: OpenSocket, history: FakeFeed
) -> None:
    socket = await open_socket(f"/ws/sessions/{SID}", "since=0")
    assert (await socket.receive_json())["type"] == "hello"
    first, task, last = [await socket.receive_json() for _ in range(3)]
    assert (first["seq"], task["seq"], last["seq"]) == (1, 3, 4)
    assert first["type"] == "event"
    assert first["subject"] == f"orch.session.{SID}.started"
    assert first["event"]["session"]["session"]["status"] == "pending"
    assert last["event"]["session"]["session"]["status"] == "running"
    assert task["event"]["event_id"] == "e3"
    await socket.disconnect()
    assert history.followed == [
        ([f"orch.session.{SID}.>", f"orch.task.{SID}.>", "orch.context.>"], 1)
    ]


def _context_event(seq: int, context_id: str, session_id: str) -> StreamEvent:
    context = context_pb2.Context(id=context_id, owner_id=session_id, version=seq)
    context.data.update({"plan": {"step": seq}})
    event = events_pb2.Event(
        event_id=f"c{seq}",
        type="context.updated",
        aggregate_type="context",
        aggregate_id=context_id,
        session_id=session_id,
        context=events_pb2.ContextEvent(context=context),
    )
    return StreamEvent(seq, f"orch.context.{context_id}.updated", event.SerializeToString())


async def test_a_session_socket_gets_only_its_own_sessions_context_events(
    open_socket: OpenSocket, feed: FakeFeed
) -> None:
    feed.events = [
        _context_event(1, "ctx-other", OTHER),
        _context_event(2, "ctx-mine", SID),
        _context_event(3, "ctx-global", ""),
        StreamEvent(4, "orch.context.ctx-bad.updated", b"\xff\xff\xff"),
        _session_event(5, SID, pb.SESSION_STATUS_RUNNING),
    ]
    socket = await open_socket(f"/ws/sessions/{SID}", "since=0")
    await socket.receive_json()
    mine, session = [await socket.receive_json() for _ in range(2)]
    assert (mine["seq"], session["seq"]) == (2, 5)
    assert mine["event"]["context"]["context"]["data"] == {"plan": {"step": 2}}
    await socket.disconnect()


def test_the_envelope_session_id_is_read_without_the_payload() -> None:
    assert session_id_of(_context_event(1, "c", SID).data) == SID
    assert session_id_of(events_pb2.Event(event_id="e").SerializeToString()) == ""
    assert session_id_of(b"\xff\xff\xff") == ""


async def test_the_agents_socket_carries_agent_events(
    open_socket: OpenSocket, feed: FakeFeed
) -> None:
    agent = events_pb2.Event(event_id="a1", type="agent.offline", aggregate_type="agent")
    feed.events = [
        _session_event(1, SID, pb.SESSION_STATUS_PENDING),
        StreamEvent(2, "orch.agent.a1.offline", agent.SerializeToString()),
    ]
    socket = await open_socket("/ws/agents", "since=0")
    await socket.receive_json()
    event = await socket.receive_json()
    assert (event["seq"], event["event"]["type"]) == (2, "agent.offline")
    assert feed.followed == [(["orch.agent.>"], 1)]
    await socket.disconnect()


async def test_undecodable_events_are_skipped(open_socket: OpenSocket, feed: FakeFeed) -> None:
    feed.events = [
        StreamEvent(1, "orch.session.x.bad", b"\xff\xff\xff"),
        _session_event(2, SID, pb.SESSION_STATUS_PENDING),
    ]
    socket = await open_socket("/ws/sessions", "since=0")
    await socket.receive_json()
    assert (await socket.receive_json())["seq"] == 2
    await socket.disconnect()


@pytest.mark.parametrize("since", ["abc", "-1", "1.5", "", "²"])
async def test_a_malformed_since_closes_with_1008(open_socket: OpenSocket, since: str) -> None:
    socket = await open_socket("/ws/sessions", f"since={since}")
    closed = await socket.next_message()
    assert closed["type"] == "websocket.close" and closed["code"] == 1008
    assert "since" in closed["reason"]
    await socket.finished()


async def test_a_malformed_session_id_closes_with_1008(open_socket: OpenSocket) -> None:
    socket = await open_socket("/ws/sessions/not-a-uuid")
    closed = await socket.next_message()
    assert (closed["type"], closed["code"]) == ("websocket.close", 1008)
    await socket.finished()


async def test_an_unreachable_stream_closes_with_1011(
    open_socket: OpenSocket, feed: FakeFeed
) -> None:
    feed.fail = True
    socket = await open_socket("/ws/sessions")
    closed = await socket.next_message()
    assert (closed["type"], closed["code"]) == ("websocket.close", 1011)
    await socket.finished()


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("orch.>", "orch.session.a.started", True),
        ("orch.>", "orch", False),
        ("orch.session.a.>", "orch.session.a.started", True),
        ("orch.session.a.>", "orch.session.b.started", False),
        ("orch.task.a.>", "orch.task.a.t1.created", True),
        ("orch.*.a.started", "orch.session.a.started", True),
        ("orch.*.a", "orch.session.a.started", False),
    ],
)
def test_subject_matching_follows_nats_wildcards(pattern: str, subject: str, matches: bool) -> None:
    assert subject_matches(pattern, subject) is matches
