"""The context service over gRPC against real PostgreSQL and NATS JetStream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from nats.js.api import ConsumerConfig, DeliverPolicy

from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.context.v1 import context_pb2 as pb
from orchestrator.api.context.v1 import context_pb2_grpc
from orchestrator.api.events.v1 import events_pb2
from orchestrator.common.errors import NotFound
from orchestrator.common.settings import Settings
from orchestrator.context.domain import ContextScope
from orchestrator.context.service import ContextService
from tests.support.mesh import wait_until

pytestmark = pytest.mark.timeout(90)

if TYPE_CHECKING:
    # Only the type stubs know the grpc.aio flavour of the generated stub.
    Stub = context_pb2_grpc.ContextServiceAsyncStub
SET = pb.CONTEXT_OPERATION_TYPE_SET
DELETE = pb.CONTEXT_OPERATION_TYPE_DELETE
SESSION = pb.CONTEXT_SCOPE_SESSION
AGENT = pb.CONTEXT_SCOPE_AGENT
GLOBAL = pb.CONTEXT_SCOPE_GLOBAL
TEMPORARY = pb.CONTEXT_SCOPE_TEMPORARY
M = pb.MergeStrategy


@pytest.fixture
async def stub(context_service: str) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(context_service) as channel:
        yield context_pb2_grpc.ContextServiceStub(channel)


def _struct(data: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(data)
    return s


def _value(value: Any) -> struct_pb2.Value:
    return _struct({"v": value}).fields["v"]


def _plain(message: Any) -> Any:
    return json_format.MessageToDict(message)


def _set(path: str, value: Any) -> pb.ContextOperation:
    return pb.ContextOperation(operation_type=SET, path=path, value=_value(value))


def _delete(path: str) -> pb.ContextOperation:
    return pb.ContextOperation(operation_type=DELETE, path=path)


async def _create(stub: Stub, data: dict[str, Any] | None = None, **fields: Any) -> pb.Context:
    fields.setdefault("scope", SESSION)
    if fields["scope"] == SESSION:
        fields.setdefault("owner_id", str(uuid.uuid4()))
    request = pb.CreateContextRequest(data=_struct(data or {}), **fields)
    created: pb.Context = (await stub.CreateContext(request)).context
    return created


async def _update(stub: Stub, context_id: str, *ops: pb.ContextOperation, **fields: Any) -> Any:
    return await stub.UpdateContext(
        pb.UpdateContextRequest(context_id=context_id, operations=ops, **fields)
    )


async def _get(stub: Stub, context_id: str) -> pb.Context:
    found: pb.Context = (await stub.GetContext(pb.GetContextRequest(context_id=context_id))).context
    return found


async def _history(stub: Stub, context_id: str, **fields: Any) -> list[pb.ContextChange]:
    changes: list[pb.ContextChange] = []
    token = ""
    while True:
        page = await stub.ListContextHistory(
            pb.ListContextHistoryRequest(
                context_id=context_id,
                page=common_pb2.PageRequest(page_size=100, page_token=token),
                **fields,
            )
        )
        changes += page.changes
        token = page.page.next_page_token
        if not token:
            return changes


async def _refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value


def _field(err: grpc.aio.AioRpcError) -> str | None:
    return dict(err.trailing_metadata() or ()).get("orch-error-field")


async def _events_of(settings: Settings, nc: Any, context_id: str) -> list[events_pb2.Event]:
    """Every event of one context in the stream, read with an ephemeral consumer."""
    js = nc.jetstream()
    sub = await js.pull_subscribe(
        f"orch.context.{context_id}.>",
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
    settings: Settings, nc: Any, context_id: str, count: int
) -> list[events_pb2.Event]:
    for _ in range(100):
        events = await _events_of(settings, nc, context_id)
        if len(events) >= count:
            return events
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} events for {context_id}, got {len(events)}")


async def test_create_then_get_whole_or_by_path(stub: Stub) -> None:
    owner = str(uuid.uuid4())
    created = await _create(
        stub, {"config": {"model": "m1", "retries": 3}}, owner_id=owner, actor="u1"
    )
    assert (created.version, created.owner_id, created.created_by) == (1, owner, "u1")
    assert _plain(created.data) == {"config": {"model": "m1", "retries": 3}}
    assert _plain(await _get(stub, created.id)) == _plain(created)
    found = await stub.GetContext(pb.GetContextRequest(context_id=created.id, path="config.model"))
    assert found.value.string_value == "m1" and not found.context.HasField("data")
    assert found.context.version == 1
    err = await _refused(
        stub.GetContext(pb.GetContextRequest(context_id=created.id, path="config.absent"))
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND and "config.absent" in (err.details() or "")
    err = await _refused(
        stub.GetContext(pb.GetContextRequest(context_id=created.id, path="config.model.x"))
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and _field(err) == "path"
    assert "'config.model'" in (err.details() or "") and "string" in (err.details() or "")


async def test_updates_apply_set_and_delete_record_history_and_publish_events(
    stub: Stub, settings: Settings, nc: Any
) -> None:
    owner = str(uuid.uuid4())
    ctx = await _create(stub, {"a": 1, "old": {"x": True}}, owner_id=owner)
    reply = await _update(
        stub,
        ctx.id,
        _set("a", 2),
        _set("b.c", [1, "two"]),
        _set("n", None),
        _delete("old"),
        _delete("never"),
        expected_version=1,
        changed_by="agent-7",
    )
    assert reply.context.version == 2
    assert _plain(reply.context.data) == {"a": 2, "b": {"c": [1, "two"]}, "n": None}
    assert [(c.path, c.version, c.changed_by) for c in reply.changes] == [
        ("a", 2, "agent-7"),
        ("b.c", 2, "agent-7"),
        ("n", 2, "agent-7"),
        ("old", 2, "agent-7"),
    ]
    by_path = {c.path: c for c in reply.changes}
    assert not by_path["b.c"].HasField("old_value") and by_path["n"].new_value.HasField(
        "null_value"
    )
    assert not by_path["old"].HasField("new_value")
    assert [_plain(c) for c in await _history(stub, ctx.id)] == [_plain(c) for c in reply.changes]
    same = await _update(stub, ctx.id, _set("a", 2))
    assert same.context.version == 2 and list(same.changes) == []

    events = await _wait_events(settings, nc, ctx.id, 2)
    assert [(e.type, e.aggregate_version) for e in events] == [
        ("context.created", 1),
        ("context.updated", 2),
    ]
    assert all(e.session_id == owner and e.source == "context" for e in events)
    assert _plain(events[1].context.context.data) == _plain(reply.context.data)
    assert [c.path for c in events[1].context.changes] == ["a", "b.c", "n", "old"]


async def test_a_stale_expected_version_is_aborted_and_changes_nothing(stub: Stub) -> None:
    ctx = await _create(stub, {"a": 1})
    await _update(stub, ctx.id, _set("a", 2), expected_version=1)
    err = await _refused(_update(stub, ctx.id, _set("a", 3), expected_version=1))
    assert err.code() == grpc.StatusCode.ABORTED and "version 2" in (err.details() or "")
    now = await _get(stub, ctx.id)
    assert now.version == 2 and _plain(now.data) == {"a": 2}
    assert [c.version for c in await _history(stub, ctx.id)] == [2]


async def test_a_path_through_a_non_object_is_invalid_and_changes_nothing(
    stub: Stub, settings: Settings, nc: Any
) -> None:
    ctx = await _create(stub, {"a": "text", "list": [1]})
    for path in ("a.b", "list.0"):
        err = await _refused(_update(stub, ctx.id, _set("ok", 1), _set(path, 1)))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert _field(err) == "operations[1].path"
        details = err.details() or ""
        assert f"{path!r}" in details and "not an object" in details
    err = await _refused(_update(stub, ctx.id, _delete("a.b.c")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = await _refused(_update(stub, ctx.id, _set("x..y", 1)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "empty segment" in (
        err.details() or ""
    )
    after = await _get(stub, ctx.id)
    assert after.version == 1 and _plain(after.data) == {"a": "text", "list": [1]}
    assert await _history(stub, ctx.id) == []
    # The creation's event is relayed a moment after the reply; nothing may follow it.
    await _wait_events(settings, nc, ctx.id, 1)
    await asyncio.sleep(0.3)
    assert [e.type for e in await _events_of(settings, nc, ctx.id)] == ["context.created"]


async def test_size_limits_name_the_limit_and_change_nothing(stub: Stub) -> None:
    ctx = await _create(stub, {"a": 1})
    err = await _refused(_update(stub, ctx.id, _set("blob", "x" * 70_000)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "65536 bytes (64 KiB)" in (err.details() or "") and "'blob'" in (err.details() or "")
    assert _field(err) == "operations[0].value"
    chunk = "x" * 60_000
    for start in range(0, 16, 8):
        await _update(stub, ctx.id, *(_set(f"k{i}", chunk) for i in range(start, start + 8)))
    err = await _refused(_update(stub, ctx.id, _set("k16", chunk), _set("k17", chunk)))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "1048576 bytes (1 MiB)" in (err.details() or "")
    err = await _refused(_update(stub, ctx.id, *(_set(f"k{i}", "y" * 60_000) for i in range(5))))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "524288 bytes (512 KiB)" in (err.details() or "")
    after = await _get(stub, ctx.id)
    assert after.version == 3 and "k16" not in after.data.fields


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"scope": 0}, "scope"),
        ({"scope": SESSION, "owner_id": "not-a-uuid"}, "owner_id"),
        ({"scope": AGENT}, "owner_id"),
        ({"scope": GLOBAL, "owner_id": "x"}, "owner_id"),
        ({"scope": GLOBAL, "ttl_seconds": 5}, "ttl_seconds"),
        ({"scope": TEMPORARY, "ttl_seconds": -5}, "ttl_seconds"),
        ({"scope": GLOBAL, "name": "has.dot"}, "name"),
        ({"scope": GLOBAL, "context_id": "nope"}, "context_id"),
    ],
)
async def test_invalid_creates_name_the_field(
    stub: Stub, fields: dict[str, Any], field: str
) -> None:
    err = await _refused(stub.CreateContext(pb.CreateContextRequest(**fields)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and _field(err) == field


async def test_create_is_idempotent_per_id_and_names_are_unique_per_owner(stub: Stub) -> None:
    owner, ident = str(uuid.uuid4()), str(uuid.uuid4())
    first = await _create(stub, {"a": 1}, owner_id=owner, name="notes", context_id=ident)
    again = await _create(stub, {"a": 1}, owner_id=owner, name="notes", context_id=ident)
    assert again.id == first.id == ident and again.version == 1
    err = await _refused(_create(stub, {"a": 2}, owner_id=owner, name="notes", context_id=ident))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    err = await _refused(_create(stub, owner_id=owner, name="notes"))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS and "'notes'" in (err.details() or "")
    await _create(stub, owner_id=owner, name="other")
    await stub.DeleteContext(pb.DeleteContextRequest(context_id=first.id))
    await _create(stub, owner_id=owner, name="notes")
    err = await _refused(_create(stub, {"a": 1}, owner_id=owner, name="notes", context_id=ident))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS and "deleted" in (err.details() or "")


async def test_delete_hides_the_context_but_keeps_its_history(stub: Stub) -> None:
    ctx = await _create(stub, {"a": 1})
    await _update(stub, ctx.id, _set("a", 2))
    err = await _refused(
        stub.DeleteContext(pb.DeleteContextRequest(context_id=ctx.id, expected_version=1))
    )
    assert err.code() == grpc.StatusCode.ABORTED
    deleted = (await stub.DeleteContext(pb.DeleteContextRequest(context_id=ctx.id))).context
    assert deleted.HasField("deleted_at")
    for call in (
        stub.GetContext(pb.GetContextRequest(context_id=ctx.id)),
        _update(stub, ctx.id, _set("a", 3)),
        stub.DeleteContext(pb.DeleteContextRequest(context_id=ctx.id)),
    ):
        assert (await _refused(call)).code() == grpc.StatusCode.NOT_FOUND
    assert [c.path for c in await _history(stub, ctx.id)] == ["a"]
    err = await _refused(stub.GetContext(pb.GetContextRequest(context_id=str(uuid.uuid4()))))
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def test_diff_reads_towards_the_other_context(stub: Stub) -> None:
    first = await _create(stub, {"same": 1, "gone": 1, "moved": {"x": 1}})
    other = await _create(stub, {"same": 1, "new": [1], "moved": {"x": 2}})
    found = await stub.DiffContexts(
        pb.DiffContextsRequest(context_id=first.id, other_context_id=other.id)
    )
    assert [e.path for e in found.added] == ["new"]
    assert [e.path for e in found.removed] == ["gone"]
    assert [(e.path, e.value.number_value, e.other_value.number_value) for e in found.changed] == [
        ("moved.x", 1, 2)
    ]
    assert [e.path for e in found.conflicts] == ["moved.x"]
    assert not found.changed[0].HasField("base_value")
    assert (found.version, found.other_version) == (1, 1)


async def test_a_clone_is_independent_and_diffs_against_their_common_base(stub: Stub) -> None:
    origin = await _create(stub, {"a": 0, "b": 0, "c": 0})
    clone = (
        await stub.CloneContext(
            pb.CloneContextRequest(
                context_id=origin.id, scope=AGENT, owner_id="agent-1", name="work", actor="u"
            )
        )
    ).context
    assert (clone.scope, clone.owner_id, clone.version) == (AGENT, "agent-1", 1)
    assert (clone.cloned_from_id, clone.cloned_from_version) == (origin.id, 1)
    assert _plain(clone.data) == _plain(origin.data) and clone.id != origin.id
    await _update(stub, origin.id, _set("a", 1), _set("c", 1))
    await _update(stub, clone.id, _set("b", 2), _set("c", 2))
    assert _plain((await _get(stub, origin.id)).data) == {"a": 1, "b": 0, "c": 1}
    found = await stub.DiffContexts(
        pb.DiffContextsRequest(context_id=origin.id, other_context_id=clone.id)
    )
    assert [e.path for e in found.changed] == ["a", "b", "c"]
    assert [(e.path, e.base_value.number_value) for e in found.conflicts] == [("c", 0)]
    repeat = pb.CloneContextRequest(
        context_id=origin.id, scope=AGENT, owner_id="agent-1", name="work", actor="u"
    )
    repeat.clone_id = clone.id
    assert (await stub.CloneContext(repeat)).context.id == clone.id
    repeat.name = "other"
    err = await _refused(stub.CloneContext(repeat))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS


TARGET = {"same": 1, "conflict": "t", "tags": ["a", "b"], "mine": True, "obj": {"k": 1}}
SOURCE = {"same": 1, "conflict": "s", "tags": ["b", "c"], "theirs": 2, "obj": {"j": 2}}
ADDED = {"theirs": 2, "obj": {"k": 1, "j": 2}, "mine": True, "same": 1}


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (M.MERGE_STRATEGY_PREFER_SOURCE, {**ADDED, "conflict": "s", "tags": ["b", "c"]}),
        (M.MERGE_STRATEGY_PREFER_TARGET, {**ADDED, "conflict": "t", "tags": ["a", "b"]}),
        (M.MERGE_STRATEGY_DEEP_MERGE, {**ADDED, "conflict": "s", "tags": ["a", "b", "c"]}),
        # The source was created after the target and neither wrote since: the source is later.
        (M.MERGE_STRATEGY_LAST_WRITE_WINS, {**ADDED, "conflict": "s", "tags": ["b", "c"]}),
    ],
)
async def test_merge_strategies_over_grpc(
    stub: Stub,
    settings: Settings,
    nc: Any,
    strategy: pb.MergeStrategy.ValueType,
    expected: dict[str, Any],
) -> None:
    target = await _create(stub, TARGET)
    source = await _create(stub, SOURCE)
    reply = await stub.MergeContexts(
        pb.MergeContextsRequest(
            source_context_id=source.id,
            target_context_id=target.id,
            strategy=strategy,
            expected_version=1,
            actor="merger",
        )
    )
    assert reply.merged and reply.context.version == 2
    assert _plain(reply.context.data) == expected == _plain((await _get(stub, target.id)).data)
    assert [c.path for c in reply.conflicts] == ["conflict", "tags"]
    assert {c.version for c in reply.changes} == {2}
    history = await _history(stub, target.id)
    assert [_plain(c) for c in history] == [_plain(c) for c in reply.changes]
    assert _plain((await _get(stub, source.id)).data) == SOURCE
    events = await _wait_events(settings, nc, target.id, 2)
    assert events[-1].type == "context.merged" and len(events[-1].context.changes) == len(
        reply.changes
    )


async def test_last_write_wins_follows_the_histories(stub: Stub) -> None:
    target = await _create(stub, {"a": 0, "b": 0})
    source = await _create(stub, {"a": 0, "b": 0})
    await _update(stub, source.id, _set("a", "s"), _set("b", "s"))
    await _update(stub, target.id, _set("a", "t"))
    reply = await stub.MergeContexts(
        pb.MergeContextsRequest(
            source_context_id=source.id,
            target_context_id=target.id,
            strategy=M.MERGE_STRATEGY_LAST_WRITE_WINS,
        )
    )
    assert _plain(reply.context.data) == {"a": "t", "b": "s"}
    assert [c.path for c in reply.changes] == ["b"]


async def test_manual_merge_returns_conflicts_and_a_proposal_and_writes_nothing(
    stub: Stub, settings: Settings, nc: Any
) -> None:
    target = await _create(stub, {"x": "t", "keep": 1})
    source = await _create(stub, {"x": "s", "new": 2})
    reply = await stub.MergeContexts(
        pb.MergeContextsRequest(
            source_context_id=source.id,
            target_context_id=target.id,
            strategy=M.MERGE_STRATEGY_MANUAL,
        )
    )
    assert not reply.merged and list(reply.changes) == []
    assert [
        (c.path, c.value.string_value, c.other_value.string_value) for c in reply.conflicts
    ] == [("x", "t", "s")]
    assert reply.context.version == 1 and _plain(reply.context.data) == {
        "x": "t",
        "keep": 1,
        "new": 2,
    }
    stored = await _get(stub, target.id)
    assert stored.version == 1 and _plain(stored.data) == {"x": "t", "keep": 1}
    # The creation's event is relayed a moment after the reply; nothing may follow it.
    await _wait_events(settings, nc, target.id, 1)
    await asyncio.sleep(0.3)
    assert [e.type for e in await _events_of(settings, nc, target.id)] == ["context.created"]


async def test_merging_a_context_with_itself_is_invalid_and_changes_nothing(stub: Stub) -> None:
    ctx = await _create(stub, {"a": 1})
    err = await _refused(
        stub.MergeContexts(
            pb.MergeContextsRequest(
                source_context_id=ctx.id,
                target_context_id=ctx.id,
                strategy=M.MERGE_STRATEGY_PREFER_SOURCE,
            )
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "merged with itself" in (err.details() or "") and _field(err) == "source_context_id"
    assert (await _get(stub, ctx.id)).version == 1
    err = await _refused(
        stub.MergeContexts(
            pb.MergeContextsRequest(source_context_id=ctx.id, target_context_id=str(uuid.uuid4()))
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and _field(err) == "strategy"


async def test_a_clone_merged_back_moves_the_common_base(stub: Stub) -> None:
    origin = await _create(stub, {"x": 0, "y": 0})
    clone = (
        await stub.CloneContext(pb.CloneContextRequest(context_id=origin.id, scope=GLOBAL))
    ).context
    await _update(stub, clone.id, _set("x", 1), _set("y", 1))
    await _update(stub, origin.id, _set("x", 2))

    async def merge(source: str, target: str, strategy: pb.MergeStrategy.ValueType) -> Any:
        return await stub.MergeContexts(
            pb.MergeContextsRequest(
                source_context_id=source, target_context_id=target, strategy=strategy
            )
        )

    first = await merge(clone.id, origin.id, M.MERGE_STRATEGY_PREFER_TARGET)
    assert _plain(first.context.data) == {"x": 2, "y": 1}
    assert [c.path for c in first.conflicts] == ["x"]
    # Both now hold what the clone had; the origin's x is its own change since then.
    back = await merge(origin.id, clone.id, M.MERGE_STRATEGY_MANUAL)
    assert list(back.conflicts) == [] and _plain(back.context.data) == {"x": 2, "y": 1}


async def test_share_lets_another_owner_use_the_very_same_context(
    stub: Stub, settings: Settings, nc: Any
) -> None:
    session_owner = str(uuid.uuid4())
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    ctx = await _create(stub, {"a": 1}, owner_id=session_owner)
    shared = (
        await stub.ShareContext(
            pb.ShareContextRequest(context_id=ctx.id, scope=AGENT, owner_id=agent, actor="u")
        )
    ).context
    assert [(s.scope, s.owner_id, s.shared_by) for s in shared.shared_with] == [(AGENT, agent, "u")]
    assert shared.version == 1
    again = await stub.ShareContext(
        pb.ShareContextRequest(context_id=ctx.id, scope=AGENT, owner_id=agent, expected_version=1)
    )
    assert len(again.context.shared_with) == 1
    err = await _refused(
        stub.ShareContext(pb.ShareContextRequest(context_id=ctx.id, scope=TEMPORARY))
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "clone" in (err.details() or "")
    own = await _create(stub, scope=AGENT, owner_id=agent)

    async def listed(owned_only: bool) -> list[str]:
        page = await stub.ListContexts(
            pb.ListContextsRequest(scope=AGENT, owner_id=agent, owned_only=owned_only)
        )
        assert all(not c.HasField("data") for c in page.contexts)
        return [c.id for c in page.contexts]

    assert await listed(False) == [ctx.id, own.id]
    assert await listed(True) == [own.id]
    await _update(stub, ctx.id, _set("a", 2))
    assert (await _get(stub, ctx.id)).data.fields["a"].number_value == 2
    events = await _wait_events(settings, nc, ctx.id, 3)
    assert [e.type for e in events] == ["context.created", "context.shared", "context.updated"]


async def test_list_pages_through_an_owners_contexts(stub: Stub) -> None:
    owner = str(uuid.uuid4())
    ids = [(await _create(stub, owner_id=owner, name=f"n{i}")).id for i in range(5)]
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListContexts(
            pb.ListContextsRequest(
                scope=SESSION,
                owner_id=owner,
                page=common_pb2.PageRequest(page_size=2, page_token=token),
            )
        )
        assert page.page.total_size == 5
        seen += [c.id for c in page.contexts]
        token = page.page.next_page_token
        if not token:
            break
    assert seen == ids
    err = await _refused(
        stub.ListContexts(
            pb.ListContextsRequest(
                scope=SESSION, owner_id=owner, page=common_pb2.PageRequest(page_token="junk")
            )
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_history_pages_filters_and_orders(stub: Stub) -> None:
    ctx = await _create(stub)
    for i in range(7):
        await _update(stub, ctx.id, _set(f"cfg.k{i % 2}", i), _set("other", i))
    everything = await _history(stub, ctx.id)
    assert [c.version for c in everything] == [v for v in range(2, 9) for _ in range(2)]
    page = await stub.ListContextHistory(
        pb.ListContextHistoryRequest(
            context_id=ctx.id, page=common_pb2.PageRequest(page_size=3), newest_first=True
        )
    )
    assert [(c.version, c.path) for c in page.changes] == [
        (8, "other"),
        (8, "cfg.k0"),
        (7, "other"),
    ]
    assert page.page.total_size == 14 and page.page.next_page_token
    newest = await _history(stub, ctx.id, newest_first=True)
    assert [_plain(c) for c in newest] == [_plain(c) for c in reversed(everything)]
    under = await _history(stub, ctx.id, path_prefix="cfg", after_version=5)
    assert [(c.version, c.path) for c in under] == [(6, "cfg.k0"), (7, "cfg.k1"), (8, "cfg.k0")]
    err = await _refused(
        stub.ListContextHistory(pb.ListContextHistoryRequest(context_id=ctx.id, path_prefix="a..b"))
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and _field(err) == "path_prefix"


async def test_temporary_contexts_expire(
    stub: Stub, settings: Settings, nc: Any, pool: asyncpg.Pool
) -> None:
    owner = f"task-{uuid.uuid4().hex[:12]}"
    ctx = await _create(stub, {"scratch": True}, scope=TEMPORARY, owner_id=owner, ttl_seconds=60)
    expires = ctx.expires_at.ToDatetime(tzinfo=UTC)
    assert timedelta(seconds=59) < expires - datetime.now(UTC) <= timedelta(seconds=60)
    # Past its expiry the context is gone at once, before any sweeper has run, and its name
    # is free: a create that needs it expires the old holder first.
    later = ContextService(pool, clock=lambda: expires + timedelta(seconds=1))
    with pytest.raises(NotFound, match="expired at"):
        await later.get(ctx.id)
    successor = await later.create(scope=ContextScope.TEMPORARY, owner_id=owner)
    assert successor.id != ctx.id
    events = await _wait_events(settings, nc, ctx.id, 2)
    assert [e.type for e in events] == ["context.created", "context.expired"]

    short = await _create(stub, scope=TEMPORARY, owner_id=f"task-{uuid.uuid4().hex}", ttl_seconds=1)

    async def gone() -> bool:
        try:
            await _get(stub, short.id)
        except grpc.aio.AioRpcError as exc:
            return exc.code() == grpc.StatusCode.NOT_FOUND
        return False

    await wait_until(gone, within=10, what="the temporary context to expire")
    events = await _wait_events(settings, nc, short.id, 2)
    assert [e.type for e in events] == ["context.created", "context.expired"]
    assert events[-1].context.context.HasField("deleted_at")
    assert await pool.fetchval(
        "SELECT deleted_at IS NOT NULL FROM context.contexts WHERE id = $1", short.id
    )


async def _next(call: Any) -> pb.WatchContextResponse:
    item = await asyncio.wait_for(call.read(), 10)
    assert isinstance(item, pb.WatchContextResponse)
    return item


async def test_watch_streams_the_snapshot_then_each_change(stub: Stub) -> None:
    ctx = await _create(stub, {"a": {"b": 1}, "z": 0})
    call = stub.WatchContext(pb.WatchContextRequest(context_id=ctx.id, path_prefix="a"))
    first = await _next(call)
    assert first.context.version == 1 and first.event_type == ""
    await _update(stub, ctx.id, _set("z", 1))  # outside the watched path: not sent
    await _update(stub, ctx.id, _set("a.b", 2))
    update = await _next(call)
    assert update.event_type == "context.updated" and update.context.version == 3
    assert [c.path for c in update.changes] == ["a.b"]
    await stub.DeleteContext(pb.DeleteContextRequest(context_id=ctx.id))
    assert (await _next(call)).event_type == "context.deleted"
    call.cancel()


async def test_fifty_updates_of_one_version_have_exactly_one_winner(stub: Stub) -> None:
    ctx = await _create(stub)

    async def contend(i: int) -> grpc.StatusCode:
        try:
            await _update(stub, ctx.id, _set("round", i), expected_version=1)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    codes = await asyncio.gather(*(contend(i) for i in range(50)))
    assert codes.count(grpc.StatusCode.OK) == 1
    assert codes.count(grpc.StatusCode.ABORTED) == 49
    assert (await _get(stub, ctx.id)).version == 2
    assert len(await _history(stub, ctx.id)) == 1


async def _write_until_accepted(stub: Stub, context_id: str, i: int) -> tuple[int, int]:
    """Reads the version and updates with it until accepted; (version produced, refusals)."""
    refused = 0
    while True:
        version = (await _get(stub, context_id)).version
        try:
            reply = await _update(
                stub,
                context_id,
                _set(f"writers.w{i}", i),
                _set("last", i),
                expected_version=version,
                changed_by=f"w{i}",
            )
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.ABORTED
            refused += 1
            continue
        assert reply.context.version == version + 1
        return reply.context.version, refused


async def test_fifty_concurrent_writers_one_winner_per_version_each_change_kept_once(
    stub: Stub, settings: Settings, nc: Any
) -> None:
    ctx = await _create(stub, {"writers": {}})
    results = await asyncio.gather(*(_write_until_accepted(stub, ctx.id, i) for i in range(50)))
    winners = {version: i for i, (version, _) in enumerate(results)}
    assert sorted(winners) == list(range(2, 52))

    history = await _history(stub, ctx.id)
    assert [c.version for c in history] == [v for v in range(2, 52) for _ in range(2)]
    assert all(c.changed_by == f"w{winners[c.version]}" for c in history)
    expected: dict[str, Any] = {"writers": {}}
    for version in sorted(winners):
        expected["writers"][f"w{winners[version]}"] = winners[version]
        expected["last"] = winners[version]
    final = await _get(stub, ctx.id)
    assert final.version == 51 and _plain(final.data) == expected

    events = await _wait_events(settings, nc, ctx.id, 51)
    assert [e.aggregate_version for e in events] == list(range(1, 52))
    print(f"\n50 writers: {sum(r for _, r in results)} stale attempts were ABORTED and retried")


async def test_fifty_concurrent_blind_updates_are_all_applied(stub: Stub) -> None:
    """Without an expected version every accepted update lands; none is lost or refused."""
    ctx = await _create(stub)
    await asyncio.gather(*(_update(stub, ctx.id, _set(f"c.k{i}", i)) for i in range(50)))
    final = await _get(stub, ctx.id)
    assert final.version == 51 and _plain(final.data) == {"c": {f"k{i}": i for i in range(50)}}
    assert len(await _history(stub, ctx.id)) == 50
