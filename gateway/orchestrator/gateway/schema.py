"""OpenAPI shapes derived from proto descriptors, so /docs shows what the codec really returns.

The models built here only document responses (routes return the codec's dicts directly, never
re-validated), and give request models `Literal` types listing an enum's JSON names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from pydantic import BaseModel, ConfigDict, create_model

from orchestrator.gateway import codec

_SCALARS: dict[int, type] = {
    FieldDescriptor.TYPE_DOUBLE: float,
    FieldDescriptor.TYPE_FLOAT: float,
    FieldDescriptor.TYPE_BOOL: bool,
    FieldDescriptor.TYPE_STRING: str,
    FieldDescriptor.TYPE_BYTES: str,  # base64
}
_WELL_KNOWN: dict[str, Any] = {
    codec.TIMESTAMP: datetime | None,
    codec.DURATION: str | None,
    codec.STRUCT: dict[str, Any] | None,
    codec.LIST_VALUE: list[Any] | None,
    codec.VALUE: Any,
}

_models: dict[str, type[BaseModel]] = {}
_names: dict[str, str] = {}


def enum_literal(enum: EnumDescriptor) -> Any:
    """`Literal["planning", "execution", …]`: pydantic checks, and OpenAPI lists, the values."""
    return Literal[codec.enum_values(enum)]


def message_model(descriptor: Descriptor) -> type[BaseModel]:
    """A pydantic model mirroring `codec.message_to_json` of this message type (cached)."""
    found = _models.get(descriptor.full_name)
    if found is not None:
        return found
    # Placeholder while the fields are built, so a message that contains itself terminates.
    _models[descriptor.full_name] = _OpenObject
    fields = {field.name: (_field_type(field), ...) for field in descriptor.fields}
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        _model_name(descriptor),
        __config__=ConfigDict(title=descriptor.name),
        **fields,
    )
    _models[descriptor.full_name] = model
    return model


class _OpenObject(BaseModel):
    model_config = ConfigDict(extra="allow")


def _model_name(descriptor: Descriptor) -> str:
    """The short name unless another package already used it (e.g. two `Checkpoint`s)."""
    owner = _names.setdefault(descriptor.name, descriptor.full_name)
    if owner == descriptor.full_name:
        return descriptor.name
    return "".join(part[:1].upper() + part[1:] for part in descriptor.full_name.split("."))


def _field_type(field: Any) -> Any:
    if codec.is_map(field):
        value_type = _single_type(field.message_type.fields_by_name["value"])
        return dict[str, value_type]  # type: ignore[valid-type]
    if field.is_repeated:
        return list[_single_type(field)]  # type: ignore[misc]
    single = _single_type(field)
    if field.has_presence and field.type != FieldDescriptor.TYPE_MESSAGE:
        return single | None
    return single


def _single_type(field: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_ENUM:
        return enum_literal(field.enum_type) | None
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        kind = field.message_type.full_name
        if kind in _WELL_KNOWN:
            return _WELL_KNOWN[kind]
        if kind in codec.WRAPPERS:
            return _single_type(field.message_type.fields_by_name["value"]) | None
        return message_model(field.message_type) | None
    return _SCALARS.get(field.type, int)
