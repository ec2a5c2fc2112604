"""The proto ⇄ JSON codec against SPEC §5, over every message and enum of every proto."""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, EnumDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from google.protobuf.wrappers_pb2 import FloatValue

import orchestrator.api
from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.session.v1 import session_pb2 as pb
from orchestrator.common.errors import InvalidArgument
from orchestrator.gateway import codec

pytestmark = pytest.mark.timeout(30)


def _proto_modules() -> Iterator[Any]:
    for info in pkgutil.walk_packages(orchestrator.api.__path__, "orchestrator.api."):
        if info.name.endswith("_pb2"):
            yield importlib.import_module(info.name)


def _messages(descriptor: Any) -> Iterator[Descriptor]:
    for message in descriptor.message_types_by_name.values():
        yield from _nested(message)


def _nested(message: Descriptor) -> Iterator[Descriptor]:
    if not message.GetOptions().map_entry:
        yield message
    for inner in message.nested_types:
        yield from _nested(inner)


ALL_MESSAGES = [m for module in _proto_modules() for m in _messages(module.DESCRIPTOR)]
ALL_ENUMS: list[EnumDescriptor] = [
    enum
    for module in _proto_modules()
    for enum in [
        *module.DESCRIPTOR.enum_types_by_name.values(),
        *(e for m in _messages(module.DESCRIPTOR) for e in m.enum_types),
    ]
]


def test_the_walk_found_every_service_proto() -> None:
    packages = {message.full_name.split(".")[1] for message in ALL_MESSAGES}
    assert {"session", "events", "common"} <= packages
    assert len(ALL_ENUMS) >= 4


@pytest.mark.parametrize("enum", ALL_ENUMS, ids=lambda e: e.full_name)
def test_every_enum_value_round_trips_by_its_lowercase_name(enum: EnumDescriptor) -> None:
    for value in enum.values:
        name = codec.enum_name(enum, value.number)
        if value.name.endswith("_UNSPECIFIED"):
            assert name is None
            continue
        assert name is not None
        assert name == name.lower() and not name.startswith(enum.name.lower())
        assert codec.parse_enum(enum, name) == value.number
    assert len(codec.enum_values(enum)) == len(enum.values) - 1


@pytest.mark.parametrize("descriptor", ALL_MESSAGES, ids=lambda d: d.full_name)
def test_every_message_renders_as_plain_json_and_parses_back(descriptor: Descriptor) -> None:
    message = GetMessageClass(descriptor)()
    rendered = codec.message_to_json(message)
    assert set(rendered) == {field.name for field in descriptor.fields}
    json.dumps(rendered, allow_nan=False)
    assert codec.message_from_json(rendered, GetMessageClass(descriptor)()) == message


def _full_session() -> pb.Session:
    session = pb.Session(
        id="0b9c4c1e-8f1a-4f57-9a58-8f3d8c7a2f10",
        title="IND-7 split billing",
        session_type=pb.SESSION_TYPE_EXECUTION,
        priority=pb.SESSION_PRIORITY_CRITICAL,
        status=pb.SESSION_STATUS_PARTIALLY_COMPLETED,
        tags=["billing", "refactor"],
        agent_config={"temperature": "0.2"},
        version=2**53 + 1,
        health_score=0.75,
        limits=pb.SessionLimits(token_budget=9_000_000_000, cost_budget_usd=12.5, max_retries=3),
    )
    session.metadata.update({"ticket": 42, "ratio": 0.5, "nested": {"ok": True, "list": [1, "x"]}})
    session.created_at.FromJsonString("2025-03-01T12:00:00.250Z")
    session.metrics.usage.input_tokens = 2**40
    session.latest_checkpoint.sequence = 3
    session.latest_checkpoint.data.update({"step": "tests"})
    return session


def test_a_full_session_uses_the_spec_shapes() -> None:
    rendered = codec.message_to_json(_full_session())
    assert rendered["status"] == "partially_completed"
    assert rendered["session_type"] == "execution"
    assert rendered["priority"] == "critical"
    assert rendered["permission_policy"] is None  # UNSPECIFIED
    assert rendered["version"] == 2**53 + 1 and isinstance(rendered["version"], int)
    assert rendered["limits"]["token_budget"] == 9_000_000_000
    assert rendered["metrics"]["usage"]["input_tokens"] == 2**40
    assert rendered["created_at"] == "2025-03-01T12:00:00.250Z"
    assert rendered["updated_at"] is None and rendered["deleted_at"] is None
    assert rendered["metadata"] == {
        "ticket": 42,
        "ratio": 0.5,
        "nested": {"ok": True, "list": [1, "x"]},
    }
    assert isinstance(rendered["metadata"]["ticket"], int)
    assert rendered["result"] is None
    assert rendered["latest_checkpoint"]["data"] == {"step": "tests"}
    assert rendered["latest_checkpoint"]["created_at"] is None
    assert rendered["agent_config"] == {"temperature": "0.2"}
    assert rendered["child_ids"] == []


def test_a_full_session_survives_a_json_round_trip() -> None:
    session = _full_session()
    text = json.dumps(codec.message_to_json(session))
    assert codec.message_from_json(json.loads(text), pb.Session()) == session


def test_an_event_renders_its_oneof_payload_under_its_name() -> None:
    event = events_pb2.Event(
        event_id="e1",
        type="session.started",
        aggregate_version=4,
        session=events_pb2.SessionEvent(
            session=pb.Session(id="s1", status=pb.SESSION_STATUS_RUNNING),
            previous_status=pb.SESSION_STATUS_PENDING,
        ),
    )
    rendered = codec.message_to_json(event)
    assert rendered["session"]["session"]["status"] == "running"
    assert rendered["session"]["previous_status"] == "pending"
    assert rendered["session"]["checkpoint"] is None
    other_payloads = [f.name for f in events_pb2.Event.DESCRIPTOR.oneofs_by_name["payload"].fields]
    assert all(rendered[name] is None for name in other_payloads if name != "session")
    assert rendered["occurred_at"] is None


def test_proto3_optional_scalars_are_null_until_set() -> None:
    assert codec.message_to_json(pb.StartSessionRequest())["expected_version"] is None
    set_to_zero = pb.StartSessionRequest(expected_version=0)
    assert codec.message_to_json(set_to_zero)["expected_version"] == 0
    parsed = codec.message_from_json({"expected_version": 0}, pb.StartSessionRequest())
    assert parsed.HasField("expected_version")


def test_an_empty_object_still_sets_a_message_field() -> None:
    parsed = codec.message_from_json({"limits": {}, "metadata": {}}, pb.CreateSessionRequest())
    assert parsed.HasField("limits") and parsed.HasField("metadata")


def test_float32_fields_drop_their_noise_digits_and_non_finite_numbers_become_null() -> None:
    assert codec.message_to_json(FloatValue(value=0.1)) == {"value": 0.1}
    assert codec.message_to_json(pb.Session(health_score=float("nan")))["health_score"] is None


def test_parse_enum_refuses_unknown_names_listing_the_allowed_ones() -> None:
    with pytest.raises(InvalidArgument) as caught:
        codec.parse_enum(pb.SessionStatus.DESCRIPTOR, "RUNNING", field="status")
    assert caught.value.field == "status"
    assert "running, " in caught.value.message and "orphaned" in caught.value.message
    with pytest.raises(InvalidArgument):
        codec.parse_enum(pb.SessionStatus.DESCRIPTOR, "unspecified")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"titel": "x"}, "titel"),
        ({"session_type": "nightly"}, "session_type"),
        ({"max_duration_seconds": 2**31}, "max_duration_seconds"),
        ({"max_duration_seconds": "60"}, "max_duration_seconds"),
        ({"max_duration_seconds": True}, "max_duration_seconds"),
        ({"tags": "one"}, "tags"),
        ({"tags": ["ok", 3]}, "tags.1"),
        ({"limits": {"max_retries": 1.5}}, "limits.max_retries"),
        ({"limits": {"cost_budget_usd": "cheap"}}, "limits.cost_budget_usd"),
        ({"limits": []}, "limits"),
        ({"agent_config": {"model": 4}}, "agent_config.model"),
        ({"metadata": ["not", "an", "object"]}, "metadata"),
        ({"title": "nul\x00byte"}, "title"),
        ({"metadata": {"note": "nul\x00byte"}}, "metadata.note"),
        ({"metadata": {"deep": [1, float("nan")]}}, "metadata.deep.1"),
        ({"limits": {"cost_budget_usd": float("inf")}}, "limits.cost_budget_usd"),
    ],
)
def test_bad_json_is_an_invalid_argument_naming_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        codec.message_from_json(data, pb.CreateSessionRequest())
    assert caught.value.field == field


def test_timestamps_parse_from_rfc3339_and_refuse_anything_else() -> None:
    parsed = codec.message_from_json({"created_at": "2025-03-01T12:00:00+02:00"}, pb.Session())
    assert parsed.created_at.ToJsonString() == "2025-03-01T10:00:00Z"
    with pytest.raises(InvalidArgument) as caught:
        codec.message_from_json({"created_at": "yesterday"}, pb.Session())
    assert caught.value.field == "created_at"


def test_null_leaves_a_field_unset() -> None:
    parsed: Message = codec.message_from_json(
        {"title": None, "limits": None, "tags": None}, pb.CreateSessionRequest()
    )
    assert parsed == pb.CreateSessionRequest()
