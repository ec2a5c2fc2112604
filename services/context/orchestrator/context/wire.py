"""Context domain objects to and from their proto messages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any, TypeVar

from google.protobuf import json_format, struct_pb2

from orchestrator.api.context.v1 import context_pb2 as pb
from orchestrator.api.events.v1 import events_pb2
from orchestrator.common.errors import InvalidArgument
from orchestrator.common.protoconv import plain, struct, timestamp
from orchestrator.context.domain import (
    MISSING,
    Change,
    Context,
    ContextScope,
    DiffEntry,
    DomainEvent,
    MergeStrategy,
    Operation,
    OperationType,
    Share,
)
from orchestrator.context.domain.changes import change_bytes
from orchestrator.context.domain.limits import EVENT_DATA_BUDGET_BYTES

E = TypeVar("E", bound=StrEnum)

_PROTO_ENUMS: dict[type[StrEnum], tuple[Any, str]] = {
    ContextScope: (pb.ContextScope, "CONTEXT_SCOPE_"),
    MergeStrategy: (pb.MergeStrategy, "MERGE_STRATEGY_"),
    OperationType: (pb.ContextOperationType, "CONTEXT_OPERATION_TYPE_"),
}


def enum_to_proto(value: StrEnum) -> Any:
    wrapper, prefix = _PROTO_ENUMS[type(value)]
    return int(wrapper.Value(prefix + value.value.upper()))


def enum_from_proto(kind: type[E], number: int, field: str) -> E:
    """UNSPECIFIED and unknown numbers are refused: every enum here must be chosen."""
    wrapper, prefix = _PROTO_ENUMS[kind]
    try:
        name: str = wrapper.Name(number)
    except ValueError:
        name = ""
    if number == 0 or not name:
        allowed = ", ".join(prefix + m.value.upper() for m in kind)
        raise InvalidArgument(f"{field} must be one of {allowed}; got {number}", field=field)
    return kind(name.removeprefix(prefix).lower())


def value_from_proto(value: struct_pb2.Value) -> Any:
    """MISSING when the message is unset (no kind); JSON null is a value."""
    if value.WhichOneof("kind") is None:
        return MISSING
    return plain(json_format.MessageToDict(value))


def value_to_proto(value: Any) -> struct_pb2.Value | None:
    if value is MISSING:
        return None
    holder = struct_pb2.Struct()
    holder.update({"v": value})
    return holder.fields["v"]


def operations_from_proto(ops: Iterable[pb.ContextOperation]) -> list[Operation]:
    out = []
    for index, op in enumerate(ops):
        kind = enum_from_proto(
            OperationType, op.operation_type, f"operations[{index}].operation_type"
        )
        value = value_from_proto(op.value) if op.HasField("value") else MISSING
        out.append(Operation(kind, op.path, value))
    return out


def share_to_proto(s: Share) -> pb.ContextShare:
    return pb.ContextShare(
        scope=enum_to_proto(s.scope),
        owner_id=s.owner_id,
        shared_by=s.shared_by,
        shared_at=timestamp(s.shared_at),
    )


def context_to_proto(c: Context, data: dict[str, Any] | None = None) -> pb.Context:
    """With `data`, that document stands in for the context's (a MANUAL merge's proposal)."""
    document = c.data if data is None else data
    return pb.Context(
        id=c.id,
        scope=enum_to_proto(c.scope),
        owner_id=c.owner_id,
        name=c.name,
        data=struct(document),
        version=c.version,
        shared_with=[share_to_proto(s) for s in c.shared_with],
        cloned_from_id=c.cloned_from_id or "",
        cloned_from_version=c.cloned_from_version,
        expires_at=timestamp(c.expires_at),
        created_by=c.created_by,
        created_at=timestamp(c.created_at),
        updated_at=timestamp(c.updated_at),
        deleted_at=timestamp(c.deleted_at),
    )


def without_data(message: pb.Context) -> pb.Context:
    out = pb.Context()
    out.CopyFrom(message)
    out.ClearField("data")
    return out


def change_to_proto(c: Change) -> pb.ContextChange:
    return pb.ContextChange(
        path=c.path,
        old_value=value_to_proto(c.old),
        new_value=value_to_proto(c.new),
        changed_by=c.changed_by,
        changed_at=timestamp(c.changed_at),
        version=c.version,
    )


def diff_entry_to_proto(e: DiffEntry) -> pb.ContextDiffEntry:
    return pb.ContextDiffEntry(
        path=e.path,
        value=value_to_proto(e.value),
        other_value=value_to_proto(e.other_value),
        base_value=value_to_proto(e.base_value),
    )


def diff_entries(entries: Sequence[DiffEntry]) -> list[pb.ContextDiffEntry]:
    return [diff_entry_to_proto(e) for e in entries]


def event_payload(
    event: DomainEvent, snapshot: pb.Context, data_bytes: int
) -> events_pb2.ContextEvent:
    """The context after the change and the changes; the data only while the message stays
    well inside NATS's 1 MiB limit (the changes are always carried)."""
    fits = data_bytes + change_bytes(event.changes) <= EVENT_DATA_BUDGET_BYTES
    return events_pb2.ContextEvent(
        context=snapshot if fits else without_data(snapshot),
        changes=[change_to_proto(ch) for ch in event.changes],
    )
