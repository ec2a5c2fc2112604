"""Domain events a context records as it changes; the service turns them into envelopes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .changes import Change
from .scope import Share


class ContextEventType(StrEnum):
    """`<aggregate>.<event>`, the `type` of the envelope on the event stream."""

    CREATED = "context.created"
    CLONED = "context.cloned"
    UPDATED = "context.updated"
    MERGED = "context.merged"
    SHARED = "context.shared"
    DELETED = "context.deleted"
    EXPIRED = "context.expired"


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """One change to one context. `version` is the context's version after it: updates and
    merges raise it; sharing, deletion and expiry leave the data, hence the version, as is."""

    type: ContextEventType
    context_id: str
    version: int
    occurred_at: datetime
    actor: str = ""
    changes: tuple[Change, ...] = ()
    share: Share | None = None
