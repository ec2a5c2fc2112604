"""Domain events a session records as it changes; the service publishes them after commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .checkpoint import Checkpoint
from .status import SessionStatus


class SessionEventType(StrEnum):
    """`<aggregate>.<event>`, the `type` of the envelope on the event stream."""

    CREATED = "session.created"
    QUEUED = "session.queued"
    STARTED = "session.started"
    PAUSED = "session.paused"
    RESUMED = "session.resumed"
    STOPPED = "session.stopped"
    CANCELLED = "session.cancelled"
    COMPLETED = "session.completed"
    PARTIALLY_COMPLETED = "session.partially_completed"
    FAILED = "session.failed"
    DEGRADED = "session.degraded"
    TIMED_OUT = "session.timed_out"
    RETRIED = "session.retried"
    CHECKPOINT_ADDED = "session.checkpoint_added"
    USAGE_RECORDED = "session.usage_recorded"
    DELETED = "session.deleted"


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """One change to one session.

    `version` is the session's version after the change, so (session_id, version) identifies
    the event and orders a session's events. `previous_status` is None when the status did not
    change (creation, checkpoints, usage, deletion).
    """

    type: SessionEventType
    session_id: str
    version: int
    occurred_at: datetime
    status: SessionStatus
    previous_status: SessionStatus | None = None
    reason: str = ""
    actor: str = ""
    checkpoint: Checkpoint | None = None
