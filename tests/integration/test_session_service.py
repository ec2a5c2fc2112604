"""The session service over gRPC against real PostgreSQL and NATS JetStream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.session.v1 import session_pb2 as pb
from orchestrator.api.session.v1 import session_pb2_grpc
from orchestrator.common.settings import Settings

pytestmark = pytest.mark.timeout(60)

S = pb.SessionStatus


@pytest.fixture
async def stub(session_service: str) -> AsyncIterator[session_pb2_grpc.SessionServiceStub]:
    async with grpc.aio.insecure_channel(session_service) as channel:
        yield session_pb2_grpc.SessionServiceStub(channel)


def _create(**overrides: Any) -> pb.CreateSessionRequest:
    fields: dict[str, Any] = {
        "title": "IND-1 build the parser",
        "initial_prompt": "Write a parser for the config format.",
        "session_type": pb.SESSION_TYPE_EXECUTION,
        "priority": pb.SESSION_PRIORITY_HIGH,
        "model_identifier": "local/scripted",
        "tags": [f"t{uuid.uuid4().hex[:12]}"],
    }
    fields.update(overrides)
    return pb.CreateSessionRequest(**fields)


async def _events_of(settings: Settings, nc: Any, session_id: str) -> list[events_pb2.Event]:
    """Every event of one session in the stream, read with an ephemeral consumer."""
    js = nc.jetstream()
    sub = await js.pull_subscribe(
        f"orch.session.{session_id}.>",
        stream=settings.stream_name,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    events: list[events_pb2.Event] = []
    try:
        while True:
            msgs = await sub.fetch(100, timeout=0.5)
            events += [events_pb2.Event.FromString(m.data) for m in msgs]
    except Exception:  # the fetch times out once the stream has nothing more
        pass
    finally:
        await sub.unsubscribe()
    return events


async def _wait_events(
    settings: Settings, nc: Any, session_id: str, count: int
) -> list[events_pb2.Event]:
    for _ in range(100):
        events = await _events_of(settings, nc, session_id)
        if len(events) >= count:
            return events
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} events for {session_id}, got {len(events)}")


async def test_lifecycle_persists_and_publishes_every_change(
    stub: Any, settings: Settings, nc: Any
) -> None:
    created = (await stub.CreateSession(_create())).session
    assert created.status == S.SESSION_STATUS_PENDING and created.version == 1
    sid = created.id
    started = (
        await stub.StartSession(pb.StartSessionRequest(session_id=sid, expected_version=1))
    ).session
    assert started.status == S.SESSION_STATUS_RUNNING and started.version == 2
    assert started.metrics.HasField("started_at")
    paused = (
        await stub.PauseSession(pb.PauseSessionRequest(session_id=sid, reason="lunch"))
    ).session
    assert paused.status == S.SESSION_STATUS_PAUSED and paused.status_reason == "lunch"
    await stub.ResumeSession(pb.ResumeSessionRequest(session_id=sid))
    done = (await stub.CompleteSession(pb.CompleteSessionRequest(session_id=sid))).session
    assert done.status == S.SESSION_STATUS_COMPLETED and done.health_score == 1.0
    again = (await stub.GetSession(pb.GetSessionRequest(session_id=sid))).session
    assert again == done

    events = await _wait_events(settings, nc, sid, 5)
    assert [e.type for e in events] == [
        "session.created",
        "session.started",
        "session.paused",
        "session.resumed",
        "session.completed",
    ]
    assert [e.aggregate_version for e in events] == [1, 2, 3, 4, 5]
    assert events[1].session.previous_status == S.SESSION_STATUS_PENDING
    assert events[-1].session.session.status == S.SESSION_STATUS_COMPLETED
    assert len({e.event_id for e in events}) == 5


async def test_refused_transition_names_both_states_and_changes_nothing(
    stub: Any, settings: Settings, nc: Any
) -> None:
    sid = (await stub.CreateSession(_create())).session.id
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CompleteSession(pb.CompleteSessionRequest(session_id=sid))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = err.value.details() or ""
    assert "pending" in details and "completed" in details
    session = (await stub.GetSession(pb.GetSessionRequest(session_id=sid))).session
    assert session.version == 1 and session.status == S.SESSION_STATUS_PENDING
    # The creation's event is relayed a moment after the reply; nothing may follow it.
    await _wait_events(settings, nc, sid, 1)
    await asyncio.sleep(0.3)
    assert [e.type for e in await _events_of(settings, nc, sid)] == ["session.created"]


async def test_stale_version_is_aborted(stub: Any) -> None:
    sid = (await stub.CreateSession(_create())).session.id
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.StartSession(pb.StartSessionRequest(session_id=sid, expected_version=7))
    assert err.value.code() == grpc.StatusCode.ABORTED
    assert "version 1" in (err.value.details() or "")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"initial_prompt": "p" * 10_001}, "initial_prompt"),
        ({"model_identifier": "no-slash"}, "model_identifier"),
        ({"max_duration_seconds": 59}, "max_duration_seconds"),
        ({"max_duration_seconds": 86_401}, "max_duration_seconds"),
        ({"session_id": "not-a-uuid"}, "session_id"),
        ({"parent_id": "not-a-uuid"}, "parent_id"),
        ({"parent_id": str(uuid.uuid4())}, "parent_id"),
        ({"session_type": 99}, "session_type"),
    ],
)
async def test_invalid_create_names_the_field_and_writes_nothing(
    stub: Any, overrides: dict[str, Any], field: str
) -> None:
    tag = f"t{uuid.uuid4().hex[:12]}"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateSession(_create(tags=[tag], **overrides))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(err.value.trailing_metadata() or ()).get("orch-error-field") == field
    listed = await stub.ListSessions(pb.ListSessionsRequest(tags=[tag]))
    assert listed.page.total_size == 0


async def test_unknown_and_deleted_sessions_are_not_found(stub: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetSession(pb.GetSessionRequest(session_id=str(uuid.uuid4())))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    sid = (await stub.CreateSession(_create())).session.id
    deleted = (await stub.DeleteSession(pb.DeleteSessionRequest(session_id=sid))).session
    assert deleted.HasField("deleted_at")
    for call in (
        stub.GetSession(pb.GetSessionRequest(session_id=sid)),
        stub.StartSession(pb.StartSessionRequest(session_id=sid)),
        stub.DeleteSession(pb.DeleteSessionRequest(session_id=sid)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_twenty_concurrent_transitions_one_winner_per_version(stub: Any) -> None:
    sid = (await stub.CreateSession(_create())).session.id
    await stub.StartSession(pb.StartSessionRequest(session_id=sid))

    async def pause() -> grpc.StatusCode:
        try:
            await stub.PauseSession(pb.PauseSessionRequest(session_id=sid, expected_version=2))
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    async def any_version() -> grpc.StatusCode:
        try:
            await stub.StopSession(pb.StopSessionRequest(session_id=sid))
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    codes = await asyncio.gather(*(pause() for _ in range(20)))
    assert codes.count(grpc.StatusCode.OK) == 1
    assert set(codes) - {grpc.StatusCode.OK} <= {grpc.StatusCode.ABORTED}
    # Without an expected version the losers find the state moved on or the row changed.
    codes = await asyncio.gather(*(any_version() for _ in range(20)))
    assert codes.count(grpc.StatusCode.OK) == 1
    assert set(codes) - {grpc.StatusCode.OK} <= {
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
    final = (await stub.GetSession(pb.GetSessionRequest(session_id=sid))).session
    assert final.status == S.SESSION_STATUS_STOPPED and final.version == 4


async def test_checkpoints_increase_and_retry_resumes_from_the_latest(stub: Any) -> None:
    sid = (await stub.CreateSession(_create(limits=pb.SessionLimits(max_retries=1)))).session.id
    await stub.StartSession(pb.StartSessionRequest(session_id=sid))
    first = await stub.AddCheckpoint(pb.AddCheckpointRequest(session_id=sid, created_by="w1"))
    assert first.checkpoint.sequence == 1
    second = await stub.AddCheckpoint(pb.AddCheckpointRequest(session_id=sid, sequence=5))
    assert second.checkpoint.sequence == 5 and second.session.metrics.checkpoint_count == 2
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.AddCheckpoint(pb.AddCheckpointRequest(session_id=sid, sequence=5))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await stub.FailSession(pb.FailSessionRequest(session_id=sid, error="agent crashed"))
    retried = await stub.RetrySession(pb.RetrySessionRequest(session_id=sid))
    assert retried.session.status == S.SESSION_STATUS_PENDING
    assert retried.resume_from.sequence == 5
    assert retried.session.metrics.retry_count == 1
    await stub.StartSession(pb.StartSessionRequest(session_id=sid))
    third = await stub.AddCheckpoint(pb.AddCheckpointRequest(session_id=sid))
    assert third.checkpoint.sequence == 6
    await stub.FailSession(pb.FailSessionRequest(session_id=sid, error="again"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RetrySession(pb.RetrySessionRequest(session_id=sid))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    listed = await stub.ListCheckpoints(
        pb.ListCheckpointsRequest(session_id=sid, page=common_pb2.PageRequest(page_size=2))
    )
    assert [c.sequence for c in listed.checkpoints] == [1, 5]
    rest = await stub.ListCheckpoints(
        pb.ListCheckpointsRequest(
            session_id=sid, page=common_pb2.PageRequest(page_token=listed.page.next_page_token)
        )
    )
    assert [c.sequence for c in rest.checkpoints] == [6] and rest.page.next_page_token == ""


async def test_list_filters_and_pages(stub: Any) -> None:
    tag = f"t{uuid.uuid4().hex[:12]}"
    ids = [(await stub.CreateSession(_create(tags=[tag, "shared"]))).session.id for _ in range(5)]
    await stub.StartSession(pb.StartSessionRequest(session_id=ids[0]))
    running = await stub.ListSessions(
        pb.ListSessionsRequest(tags=[tag], statuses=[S.SESSION_STATUS_RUNNING])
    )
    assert [s.id for s in running.sessions] == [ids[0]]
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListSessions(
            pb.ListSessionsRequest(
                tags=[tag], page=common_pb2.PageRequest(page_size=2, page_token=token)
            )
        )
        assert page.page.total_size == 5
        seen += [s.id for s in page.sessions]
        token = page.page.next_page_token
        if not token:
            break
    assert seen == list(reversed(ids))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListSessions(
            pb.ListSessionsRequest(page=common_pb2.PageRequest(page_token="garbage"))
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_repeated_create_with_the_same_id_is_idempotent(stub: Any) -> None:
    sid = str(uuid.uuid4())
    first = (await stub.CreateSession(_create(session_id=sid))).session
    second = (await stub.CreateSession(_create(session_id=sid))).session
    assert first.id == second.id == sid and second.version == 1
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateSession(_create(session_id=sid, title="something else"))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_usage_reports_apply_once(stub: Any) -> None:
    sid = (await stub.CreateSession(_create())).session.id
    report = pb.RecordSessionUsageRequest(
        session_id=sid,
        report_id="r-1",
        usage=common_pb2.Usage(input_tokens=100, output_tokens=20, cost_usd=0.5),
        tasks_total=3,
    )
    await stub.RecordSessionUsage(report)
    after = (await stub.RecordSessionUsage(report)).session
    assert after.metrics.usage.input_tokens == 100 and after.metrics.tasks_total == 3


async def test_watch_streams_the_snapshot_then_each_change(stub: Any) -> None:
    sid = (await stub.CreateSession(_create())).session.id
    call = stub.WatchSession(pb.WatchSessionRequest(session_id=sid))
    first = await call.read()
    assert first.session.version == 1 and first.event_type == ""
    await stub.StartSession(pb.StartSessionRequest(session_id=sid))
    update = await asyncio.wait_for(call.read(), 10)
    assert update.event_type == "session.started" and update.session.version == 2
    call.cancel()
