"""Event envelopes, subjects and the JetStream stream they live on."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from orchestrator.api.events.v1 import events_pb2

SUBJECT_ROOT = "orch"
MSG_ID_HEADER = "Nats-Msg-Id"


def subject_for(
    aggregate_type: str, aggregate_id: str, event_type: str, session_id: str = ""
) -> str:
    """`orch.<aggregate>.<id>.<event>`; for tasks `orch.task.<session>.<id>.<event>`."""
    name = event_type.split(".", 1)[-1]
    if aggregate_type == "task":
        return f"{SUBJECT_ROOT}.task.{session_id or '_'}.{aggregate_id}.{name}"
    return f"{SUBJECT_ROOT}.{aggregate_type}.{aggregate_id}.{name}"


_NOT_IN_A_TOKEN = frozenset(". *>\t\r\n")


def event_subject(event: events_pb2.Event) -> str:
    """The subject `event` is published on (`subject_for`). A task's assignment also names its
    agent, `orch.task.<session>.<id>.assigned.<agent>`, so each worker's consumer is handed its
    own assignments only, not every worker's (`orch.task.<session>.>` still matches it)."""
    subject = subject_for(event.aggregate_type, event.aggregate_id, event.type, event.session_id)
    if event.type == "task.assigned":
        agent = event.task.task.assigned_agent_id
        if agent and not _NOT_IN_A_TOKEN.intersection(agent):
            subject = f"{subject}.{agent}"
    return subject


def new_envelope(
    *,
    event_type: str,
    source: str,
    aggregate_type: str,
    aggregate_id: str,
    aggregate_version: int,
    session_id: str,
    occurred_at: datetime,
    trace_context: Mapping[str, str],
) -> events_pb2.Event:
    at = Timestamp()
    at.FromDatetime(occurred_at)
    return events_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_type,
        source=source,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        aggregate_version=aggregate_version,
        session_id=session_id,
        occurred_at=at,
        trace_context=trace_context,
    )


async def ensure_stream(
    js: JetStreamContext, name: str, *, max_age_seconds: int, max_bytes: int, replicas: int = 1
) -> None:
    """Declares the event stream, or brings an existing one to this configuration (its
    replicas included: a start with a different count changes the stream's)."""
    config = StreamConfig(
        name=name,
        subjects=[f"{SUBJECT_ROOT}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=float(max_age_seconds),
        max_bytes=max_bytes,
        # Republishing an outbox row within this window is dropped by the server (Nats-Msg-Id).
        duplicate_window=120.0,
        num_replicas=replicas,
    )
    try:
        await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config)
        return
    await js.update_stream(config)
