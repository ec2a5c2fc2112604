"""Proto messages ⇄ the JSON the gateway speaks (SPEC §5), by walking descriptors.

Rules: proto field names (snake_case); enums as their lowercase name without the enum's prefix
(`SESSION_STATUS_RUNNING` → `"running"`, the UNSPECIFIED value → null); 64-bit integers as JSON
numbers; Timestamps as RFC 3339; Struct/Value as plain JSON; unset message, optional and oneof
fields as null. Nothing here knows a particular service, so new protos need no code.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from orchestrator.common.errors import InvalidArgument

M = TypeVar("M", bound=Message)
# A FieldDescriptor; types-protobuf names two runtime classes (python, upb) mypy cannot unify.
_Field = Any

TIMESTAMP = "google.protobuf.Timestamp"
DURATION = "google.protobuf.Duration"
STRUCT = "google.protobuf.Struct"
VALUE = "google.protobuf.Value"
LIST_VALUE = "google.protobuf.ListValue"
WRAPPERS = frozenset(
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)
# Free-form JSON nested deeper than this is refused: protobuf's decoders give up on deeper
# Structs (the service would fail to read the request, a 500), and 32 is what every request,
# reply and event envelope carries (the context service's limit too).
MAX_JSON_DEPTH = 32
# Integers beyond this lose precision as JSON doubles, so Struct numbers above it stay floats.
_MAX_SAFE_INT = 2**53
_UNSPECIFIED = "unspecified"


@cache
def _enum_prefix(enum: EnumDescriptor) -> str:
    """`SessionStatus` → `SESSION_STATUS_` (the prefix buf lint requires on every value)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", enum.name).upper() + "_"


def _short_name(enum: EnumDescriptor, full_name: str) -> str:
    return full_name.removeprefix(_enum_prefix(enum)).lower()


@cache
def _numbers_by_json_name(enum: EnumDescriptor) -> dict[str, int]:
    names = ((_short_name(enum, value.name), value.number) for value in enum.values)
    return {name: number for name, number in names if name != _UNSPECIFIED}


def enum_values(enum: EnumDescriptor) -> tuple[str, ...]:
    """The JSON names of an enum's values, UNSPECIFIED left out, in declaration order."""
    return tuple(_numbers_by_json_name(enum))


def enum_name(enum: EnumDescriptor, number: int) -> str | None:
    """The JSON name of a value; None for UNSPECIFIED and for numbers this build does not know."""
    value = enum.values_by_number.get(number)
    if value is None:
        return None
    name = _short_name(enum, value.name)
    return None if name == _UNSPECIFIED else name


def parse_enum(enum: EnumDescriptor, text: str, *, field: str | None = None) -> int:
    """`"running"` → `SESSION_STATUS_RUNNING`'s number; anything else is an InvalidArgument."""
    number = _numbers_by_json_name(enum).get(text) if isinstance(text, str) else None
    if number is not None:
        return number
    allowed = ", ".join(enum_values(enum))
    raise InvalidArgument(
        f"{text!r} is not a valid {enum.name}; allowed values: {allowed}", field=field
    )


def message_to_json(message: Message) -> dict[str, Any]:
    """Every field of `message`, unset ones included (as null or their proto3 default)."""
    return {field.name: _field_to_json(message, field) for field in message.DESCRIPTOR.fields}


def _field_to_json(message: Message, field: _Field) -> Any:
    value = getattr(message, field.name)
    if is_map(field):
        value_field = field.message_type.fields_by_name["value"]
        return {_map_key(k): _single_to_json(v, value_field) for k, v in value.items()}
    if field.is_repeated:
        return [_single_to_json(item, field) for item in value]
    if field.has_presence and not message.HasField(field.name):
        return None
    return _single_to_json(value, field)


def _single_to_json(value: Any, field: _Field) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return _message_value_to_json(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return enum_name(field.enum_type, value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode("ascii")
    if field.type == FieldDescriptor.TYPE_FLOAT:
        return _shortest_float32(value)
    if field.type == FieldDescriptor.TYPE_DOUBLE:
        return value if math.isfinite(value) else None
    return value


def _message_value_to_json(message: Message) -> Any:
    kind = message.DESCRIPTOR.full_name
    known: Any = message  # the well-known types' helpers are not in the Message stubs
    if kind in (TIMESTAMP, DURATION):
        return known.ToJsonString()
    if kind == STRUCT:
        return {key: _value_to_json(item) for key, item in known.fields.items()}
    if kind == LIST_VALUE:
        return [_value_to_json(item) for item in known.values]
    if kind == VALUE:
        return _value_to_json(message)
    if kind in WRAPPERS:
        return _single_to_json(known.value, message.DESCRIPTOR.fields_by_name["value"])
    return message_to_json(message)


def _value_to_json(value: Any) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number: float = value.number_value
        if not math.isfinite(number):
            return None
        # Struct stores every number as a double; give back the integer a client put in.
        return int(number) if number.is_integer() and abs(number) < _MAX_SAFE_INT else number
    if kind == "struct_value":
        return _message_value_to_json(value.struct_value)
    if kind == "list_value":
        return _message_value_to_json(value.list_value)
    if kind in ("string_value", "bool_value"):
        return getattr(value, kind)
    return None


def _shortest_float32(value: float) -> float | None:
    """float32 read back as a double shows noise digits (0.1 → 0.100000001…); trim them."""
    if not math.isfinite(value):
        return None
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.unpack("f", struct.pack("f", candidate))[0] == value:
            return candidate
    return value


def is_map(field: _Field) -> bool:
    return bool(
        field.type == FieldDescriptor.TYPE_MESSAGE
        and field.is_repeated
        and field.message_type.GetOptions().map_entry
    )


def _map_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def message_from_json(data: Mapping[str, Any], message: M, *, path: str = "") -> M:
    """Fills `message` from JSON shaped like `message_to_json`'s output; null leaves a field unset.

    Every failure is an InvalidArgument naming the dotted path of the offending field.
    """
    if not isinstance(data, Mapping):
        raise InvalidArgument(f"{path or 'body'} must be a JSON object", field=path or None)
    descriptor = message.DESCRIPTOR
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        field = descriptor.fields_by_name.get(key)
        if field is None:
            raise InvalidArgument(f"unknown field {where!r}", field=where)
        if value is not None:
            _set_field(message, field, value, where)
    return message


def _set_field(message: Message, field: _Field, value: Any, where: str) -> None:
    target = getattr(message, field.name)
    try:
        if is_map(field):
            _fill_map(target, field, _expect(value, Mapping, "an object", where), where)
        elif field.is_repeated:
            for index, item in enumerate(_expect(value, list, "an array", where)):
                _append(target, field, item, f"{where}.{index}")
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            target.SetInParent()  # an empty object still marks the field as set
            _fill_message(target, value, where)
        else:
            setattr(message, field.name, _scalar(field, value, where))
    except (ValueError, TypeError, OverflowError, json_format.ParseError) as exc:
        raise InvalidArgument(f"{where}: {exc}", field=where) from exc


def _fill_map(target: Any, field: _Field, value: Mapping[str, Any], where: str) -> None:
    key_field = field.message_type.fields_by_name["key"]
    value_field = field.message_type.fields_by_name["value"]
    for raw_key, item in value.items():
        key = _scalar(key_field, _map_key_from_json(key_field, raw_key), f"{where}.{raw_key}")
        if value_field.type == FieldDescriptor.TYPE_MESSAGE:
            _fill_message(target[key], item, f"{where}.{raw_key}")
        else:
            target[key] = _scalar(value_field, item, f"{where}.{raw_key}")


def _map_key_from_json(key_field: _Field, raw_key: str) -> Any:
    if key_field.type == FieldDescriptor.TYPE_STRING:
        return raw_key
    if key_field.type == FieldDescriptor.TYPE_BOOL:
        return {"true": True, "false": False}.get(raw_key, raw_key)
    return int(raw_key)


def _append(target: Any, field: _Field, item: Any, where: str) -> None:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        _fill_message(target.add(), item, where)
    else:
        target.append(_scalar(field, item, where))


def _fill_message(target: Message, value: Any, where: str) -> None:
    kind = target.DESCRIPTOR.full_name
    known: Any = target
    if kind in (TIMESTAMP, DURATION):
        known.FromJsonString(_expect(value, str, "an RFC 3339 string", where))
    elif kind == STRUCT:
        known.update(_storable(_expect(value, Mapping, "an object", where), where))
    elif kind == LIST_VALUE:
        known.extend(_storable(_expect(value, list, "an array", where), where))
    elif kind == VALUE:
        json_format.ParseDict(_storable(value, where), target)
    elif kind in WRAPPERS:
        known.value = _scalar(target.DESCRIPTOR.fields_by_name["value"], value, where)
    else:
        message_from_json(value, target, path=where)


def _scalar(field: _Field, value: Any, where: str) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_ENUM:
        return parse_enum(field.enum_type, value, field=where)
    if kind == FieldDescriptor.TYPE_BOOL:
        return _expect(value, bool, "true or false", where)
    if kind == FieldDescriptor.TYPE_STRING:
        return _without_nul(_expect(value, str, "a string", where), where)
    if kind == FieldDescriptor.TYPE_BYTES:
        try:
            return base64.b64decode(_expect(value, str, "a base64 string", where), validate=True)
        except binascii.Error as exc:
            raise InvalidArgument(f"{where} must be base64: {exc}", field=where) from exc
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InvalidArgument(f"{where} must be a finite number", field=where)
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{where} must be an integer", field=where)
    return value


def _without_nul(text: str, where: str) -> str:
    # PostgreSQL text and jsonb cannot hold NUL: refuse it here rather than as a 500 later.
    if "\x00" in text:
        raise InvalidArgument(f"{where} must not contain NUL characters", field=where)
    return text


def _storable(value: Any, where: str, depth: int = 0) -> Any:
    """Free-form JSON (Struct, Value) as PostgreSQL jsonb and protobuf will take it: no NaN,
    no NUL, at most MAX_JSON_DEPTH objects and arrays deep."""
    if isinstance(value, str):
        return _without_nul(value, where)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgument(f"{where} must not hold NaN or Infinity", field=where)
    if isinstance(value, Mapping | list) and depth >= MAX_JSON_DEPTH:
        raise InvalidArgument(
            f"{where} nests objects and arrays deeper than {MAX_JSON_DEPTH} levels", field=where
        )
    if isinstance(value, Mapping):
        return {
            _without_nul(str(k), where): _storable(v, f"{where}.{k}", depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_storable(item, f"{where}.{i}", depth + 1) for i, item in enumerate(value)]
    return value


def _expect(value: Any, kind: type | tuple[type, ...], what: str, where: str) -> Any:
    if not isinstance(value, kind):
        raise InvalidArgument(f"{where} must be {what}", field=where)
    return value
