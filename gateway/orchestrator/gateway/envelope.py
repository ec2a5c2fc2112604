"""Reads an event envelope's `session_id` without decoding its payload.

A socket that filters events by session (context events carry no session id in their subject)
must look at every candidate; most are dropped. Parsing them as the full `Event` would build the
whole payload (a context's data, a task) only to throw it away. `_EnvelopeHead` declares the one
field of `Event` we need, so protobuf skips the payload as unknown bytes: ~50x faster on a 10 kB
context event.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from orchestrator.api.events.v1 import events_pb2

_SESSION_ID = events_pb2.Event.DESCRIPTOR.fields_by_name["session_id"]


def _head_class() -> type[Message]:
    """A message type with only `Event.session_id` (same number), in a private pool."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="orchestrator/gateway/envelope_head.proto",
        package="orchestrator.gateway",
        syntax="proto3",
    )
    proto.message_type.add(name="EnvelopeHead").field.add(
        name=_SESSION_ID.name,
        number=_SESSION_ID.number,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    descriptor = pool.FindMessageTypeByName("orchestrator.gateway.EnvelopeHead")
    return message_factory.GetMessageClass(descriptor)


_EnvelopeHead = _head_class()


def session_id_of(data: bytes) -> str:
    """The serialized `Event`'s session_id; "" when it has none or is not an `Event` at all."""
    head = _EnvelopeHead()
    try:
        head.ParseFromString(data)
    except DecodeError:
        return ""
    return str(getattr(head, _SESSION_ID.name))
