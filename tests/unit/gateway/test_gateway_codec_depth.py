"""Free-form JSON too deep for protobuf is refused by the codec (found by the fuzzer: a context
created with data 150 levels deep made the context service fail to read the request, a 500)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.api.context.v1 import context_pb2
from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.task.v1 import task_pb2
from orchestrator.common.errors import InvalidArgument
from orchestrator.gateway.codec import MAX_JSON_DEPTH, message_from_json

pytestmark = pytest.mark.timeout(30)


def _objects(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def _arrays(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def test_data_as_deep_as_allowed_survives_every_hop() -> None:
    request = message_from_json(
        {"scope": "global", "data": _objects(MAX_JSON_DEPTH)}, context_pb2.CreateContextRequest()
    )
    assert context_pb2.CreateContextRequest.FromString(request.SerializeToString()) == request
    event = events_pb2.Event()
    event.context.context.data.CopyFrom(request.data)
    assert events_pb2.Event.FromString(event.SerializeToString()) == event


@pytest.mark.parametrize("deep", [_objects(MAX_JSON_DEPTH + 1), {"list": _arrays(MAX_JSON_DEPTH)}])
def test_deeper_data_is_an_invalid_argument(deep: Any) -> None:
    with pytest.raises(InvalidArgument, match="deeper than 32 levels") as refused:
        message_from_json({"scope": "global", "data": deep}, context_pb2.CreateContextRequest())
    assert str(refused.value.field).startswith("data.")


def test_the_limit_holds_for_values_and_nested_structs_too() -> None:
    with pytest.raises(InvalidArgument, match="deeper than 32 levels"):
        message_from_json(
            {"operations": [{"path": "a", "value": _objects(MAX_JSON_DEPTH + 1)}]},
            context_pb2.UpdateContextRequest(),
        )
    with pytest.raises(InvalidArgument, match=r"^input\.a\.a"):
        message_from_json({"input": _objects(MAX_JSON_DEPTH + 150)}, task_pb2.CreateTaskRequest())
