"""The live event sockets against an in-memory feed: hello, replay, filters, refusals, cleanup."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.session.v1 import session_pb2 as pb
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
    assert history.followed == [([f"orch.session.{SID}.>", f"orch.task.{SID}.>"], 1)]
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
