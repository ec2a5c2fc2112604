"""The Context aggregate: creation rules, clones, shares, merges, deletion and expiry."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from orchestrator.common.errors import InvalidArgument, NotFound, ResourceExhausted
from orchestrator.context.domain import (
    Context,
    ContextEventType,
    ContextScope,
    MergeStrategy,
    Operation,
    OperationType,
    WriteLog,
)

MakeContext = Callable[..., Context]
SESSION_ID = "5b0f7c1e-3f55-4b8e-9a43-0c8e8e4b9d10"  # the owner make_context gives
S = ContextScope
E = ContextEventType


def test_create_makes_version_1_with_a_created_event(t0: datetime) -> None:
    context = Context.create(
        now=t0, scope=S.SESSION, owner_id=SESSION_ID.upper(), data={"a": 1}, created_by="u"
    )
    assert uuid.UUID(context.id).version == 4
    assert (context.version, context.owner_id, context.data) == (1, SESSION_ID, {"a": 1})
    assert context.expires_at is None and context.created_at == context.updated_at == t0
    [event] = context.pull_events()
    assert (event.type, event.version, event.actor, event.changes) == (E.CREATED, 1, "u", ())


@pytest.mark.parametrize(
    ("fields", "field", "problem"),
    [
        ({"scope": S.SESSION, "owner_id": "not-a-uuid"}, "owner_id", "session's UUID"),
        ({"scope": S.AGENT, "owner_id": ""}, "owner_id", "owner's id"),
        ({"scope": S.AGENT, "owner_id": "has space"}, "owner_id", "1 to 128"),
        ({"scope": S.GLOBAL, "owner_id": "someone"}, "owner_id", "nobody owns"),
        ({"scope": S.GLOBAL, "ttl_seconds": 60}, "ttl_seconds", "only to TEMPORARY"),
        ({"scope": S.TEMPORARY, "ttl_seconds": -1}, "ttl_seconds", "1 to 2592000"),
        ({"scope": S.GLOBAL, "name": "a.b"}, "name", "without dots"),
        ({"scope": S.GLOBAL, "context_id": "nope"}, "context_id", "UUID"),
        ({"scope": S.GLOBAL, "data": {"k": float("inf")}}, "data", "infinity"),
    ],
)
def test_create_refuses_bad_fields_naming_them(
    t0: datetime, fields: dict[str, Any], field: str, problem: str
) -> None:
    with pytest.raises(InvalidArgument, match=problem) as err:
        Context.create(now=t0, **fields)
    assert err.value.field == field


def test_temporary_contexts_expire_after_their_ttl(t0: datetime) -> None:
    default = Context.create(now=t0, scope=S.TEMPORARY)
    assert default.expires_at == t0 + timedelta(hours=1) and default.owner_id == ""
    short = Context.create(now=t0, scope=S.TEMPORARY, owner_id="task-1", ttl_seconds=30)
    assert short.expires_at == t0 + timedelta(seconds=30)
    short.ensure_visible(t0 + timedelta(seconds=29))
    with pytest.raises(NotFound, match="expired at"):
        short.ensure_visible(t0 + timedelta(seconds=30))
    with pytest.raises(NotFound):
        short.update(t0 + timedelta(seconds=31), [Operation(OperationType.SET, "a", 1)])


def test_expire_soft_deletes_with_an_event_and_keeps_the_version(t0: datetime) -> None:
    context = Context.create(now=t0, scope=S.TEMPORARY, ttl_seconds=10)
    context.pull_events()
    with pytest.raises(ValueError, match="not a live context past its expiry"):
        context.expire(t0)
    later = t0 + timedelta(seconds=10)
    context.expire(later, actor="expiry-sweeper")
    assert context.deleted_at == later and context.version == 1
    [event] = context.pull_events()
    assert (event.type, event.actor) == (E.EXPIRED, "expiry-sweeper")


def test_delete_hides_the_context(make_context: MakeContext, t0: datetime) -> None:
    context = make_context({"a": 1})
    context.delete(t0, actor="u")
    assert context.pull_events()[0].type is E.DELETED
    with pytest.raises(NotFound):
        context.ensure_visible(t0)
    with pytest.raises(NotFound):
        context.delete(t0)


def test_a_create_over_1_mib_is_resource_exhausted(t0: datetime) -> None:
    with pytest.raises(ResourceExhausted, match="1 MiB"):
        Context.create(now=t0, scope=S.GLOBAL, data={f"k{i}": "x" * 60_000 for i in range(18)})


def test_value_at_reads_a_path_or_is_not_found(make_context: MakeContext) -> None:
    context = make_context({"cfg": {"model": "m"}, "flat": 1})
    assert context.value_at("cfg.model") == "m"
    assert context.value_at("") == context.data
    with pytest.raises(NotFound, match=r"no value at 'cfg\.absent'"):
        context.value_at("cfg.absent")
    with pytest.raises(InvalidArgument, match="goes through 'flat'") as err:
        context.value_at("flat.deeper")
    assert err.value.field == "path"


def test_clone_copies_the_data_into_a_new_independent_context(
    make_context: MakeContext, t0: datetime
) -> None:
    origin = make_context({"a": {"b": 1}})
    origin.update(t0, [Operation(OperationType.SET, "a.c", 2)])
    later = t0 + timedelta(minutes=1)
    clone = origin.clone(later, scope=S.AGENT, owner_id="agent-1", name="scratch", actor="u")
    assert (clone.scope, clone.owner_id, clone.name, clone.version) == (
        S.AGENT,
        "agent-1",
        "scratch",
        1,
    )
    assert (clone.cloned_from_id, clone.cloned_from_version) == (origin.id, 2)
    assert clone.data == clone.base == origin.data and clone.created_at == later
    [event] = clone.pull_events()
    assert event.type is E.CLONED
    clone.update(later, [Operation(OperationType.SET, "a.b", 9)])
    assert origin.data["a"]["b"] == 1 and clone.base == {"a": {"b": 1, "c": 2}}


def test_clone_into_temporary_takes_a_ttl_and_refuses_its_own_id(
    make_context: MakeContext, t0: datetime
) -> None:
    origin = make_context()
    clone = origin.clone(t0, scope=S.TEMPORARY, ttl_seconds=5)
    assert clone.expires_at == t0 + timedelta(seconds=5)
    with pytest.raises(InvalidArgument) as err:
        origin.clone(t0, scope=S.GLOBAL, clone_id=origin.id)
    assert err.value.field == "clone_id"


def test_share_adds_an_owner_once(make_context: MakeContext, t0: datetime) -> None:
    context = make_context()
    share = context.share(t0, S.AGENT, "agent-9", actor="u")
    assert share is not None and (share.scope, share.owner_id, share.shared_by) == (
        S.AGENT,
        "agent-9",
        "u",
    )
    assert context.share(t0, S.AGENT, "agent-9") is None
    assert context.version == 1 and [e.type for e in context.pull_events()] == [E.SHARED]


@pytest.mark.parametrize(
    ("scope", "owner", "problem"),
    [
        (S.TEMPORARY, "", "clone into TEMPORARY"),
        (S.SESSION, SESSION_ID, "owned by SESSION"),
        (S.SESSION, "x", "session's UUID"),
    ],
)
def test_share_refusals(
    make_context: MakeContext, t0: datetime, scope: ContextScope, owner: str, problem: str
) -> None:
    context = make_context()
    with pytest.raises(InvalidArgument, match=problem):
        context.share(t0, scope, owner)
    assert context.shared_with == []


def test_shares_are_limited_to_100(make_context: MakeContext, t0: datetime) -> None:
    context = make_context()
    for i in range(100):
        context.share(t0, S.AGENT, f"agent-{i}")
    with pytest.raises(ResourceExhausted, match="at most 100"):
        context.share(t0, S.AGENT, "agent-100")


def test_a_context_cannot_be_merged_with_itself(make_context: MakeContext, t0: datetime) -> None:
    context = make_context({"a": 1})
    with pytest.raises(InvalidArgument, match="cannot be merged with itself") as err:
        context.merge_from(context, MergeStrategy.PREFER_SOURCE, t0)
    assert err.value.field == "source_context_id"
    assert context.version == 1 and context.pull_events() == []


def test_merge_writes_one_version_with_a_merged_event(
    make_context: MakeContext, t0: datetime
) -> None:
    target, source = make_context({"a": 1}), make_context({"a": 2, "b": 3})
    outcome = target.merge_from(source, MergeStrategy.PREFER_SOURCE, t0, actor="u")
    assert outcome.merged and target.version == 2 and target.data == {"a": 2, "b": 3}
    assert [(c.path, c.old, c.new, c.version) for c in outcome.changes] == [
        ("a", 1, 2, 2),
        ("b", outcome.changes[1].old, 3, 2),
    ]
    assert [c.path for c in outcome.conflicts] == ["a"]
    [event] = target.pull_events()
    assert event.type is E.MERGED and event.changes == outcome.changes
    assert source.data == {"a": 2, "b": 3} and source.version == 1


def test_manual_merge_proposes_and_never_writes(make_context: MakeContext, t0: datetime) -> None:
    target, source = make_context({"a": 1}), make_context({"a": 2, "b": 3})
    outcome = target.merge_from(source, MergeStrategy.MANUAL, t0)
    assert not outcome.merged and outcome.changes == ()
    assert outcome.proposal == {"a": 1, "b": 3} and [c.path for c in outcome.conflicts] == ["a"]
    assert target.data == {"a": 1} and target.version == 1 and target.pull_events() == []


def test_merges_between_a_clone_and_its_origin_move_their_common_base(
    make_context: MakeContext, t0: datetime
) -> None:
    origin = make_context({"x": 0, "y": 0})
    clone = origin.clone(t0, scope=S.GLOBAL)
    clone.update(t0, [Operation(OperationType.SET, "x", 1)])
    origin.update(t0, [Operation(OperationType.SET, "x", 2)])
    assert [c.path for c in origin.diff(clone).conflicts] == ["x"]
    # The origin keeps its x; from now on the two have agreed on the clone's data.
    outcome = origin.merge_from(clone, MergeStrategy.PREFER_TARGET, t0)
    assert outcome.changes == () and outcome.moved_base is None
    clone.update(t0, [Operation(OperationType.SET, "y", 5)])
    outcome = origin.merge_from(clone, MergeStrategy.PREFER_TARGET, t0)
    assert outcome.moved_base == {"x": 1, "y": 5}
    clone.base = outcome.moved_base  # what the repository stores on the clone's row
    assert origin.diff(clone).conflicts == ()
    # Merging back into the clone: the origin's x changed since the base, the clone's did not.
    outcome = clone.merge_from(origin, MergeStrategy.PREFER_TARGET, t0)
    assert clone.data == {"x": 2, "y": 5} and clone.base == origin.data


def test_last_write_wins_uses_the_write_logs(make_context: MakeContext, t0: datetime) -> None:
    target, source = make_context({"a": 1}), make_context({"a": 2})
    outcome = target.merge_from(
        source,
        MergeStrategy.LAST_WRITE_WINS,
        t0,
        target_log=WriteLog(t0, {"a": t0 + timedelta(seconds=2)}),
        source_log=WriteLog(t0, {"a": t0 + timedelta(seconds=1)}),
    )
    assert outcome.changes == () and target.data == {"a": 1}
