"""Conversions between Python values and protobuf's well-known types, shared by the services."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Doubles up to 2**53 hold integers exactly; such numbers are given back as JSON integers.
_EXACT = 2**53


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """An aware datetime as a Timestamp, exact to the microsecond (None stays unset).

    Whole-number arithmetic: quicker than FromDatetime, which matters when a 10,000-task graph
    is converted."""
    if value is None:
        return None
    since = value - _EPOCH
    return timestamp_pb2.Timestamp(
        seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1_000
    )


def struct(value: dict[str, Any] | None) -> struct_pb2.Struct | None:
    if value is None:
        return None
    s = struct_pb2.Struct()
    s.update(value)
    return s


def _plain(value: Any) -> Any:
    """Protobuf numbers are doubles: integral ones go back to being integers."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT:
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def from_struct(value: struct_pb2.Struct) -> dict[str, Any]:
    plain: dict[str, Any] = _plain(json_format.MessageToDict(value))
    return plain


def plain(value: Any) -> Any:
    """JSON-like data from protobuf (a Value's contents, say) with integral doubles as ints."""
    return _plain(value)
