"""The session domain: the Session aggregate, its status machine, checkpoints and rules.

Pure Python: nothing here imports protobuf, gRPC, databases or message brokers.
"""

from .budget import budget_exhausted, tokens_counted
from .checkpoint import Checkpoint, next_sequence
from .events import DomainEvent, SessionEventType
from .health import health_score
from .kinds import PermissionPolicy, SessionPriority, SessionType
from .limits import DEFAULT_MAX_RETRIES, SessionLimits
from .metrics import SessionMetrics, Usage
from .session import Session
from .status import (
    ACTIVE_STATUSES,
    ENDED_STATUSES,
    RETRYABLE_STATUSES,
    TERMINAL_STATUSES,
    TRANSITIONS,
    SessionStatus,
    can_transition,
    ensure_transition,
)

__all__ = [
    "ACTIVE_STATUSES",
    "DEFAULT_MAX_RETRIES",
    "ENDED_STATUSES",
    "RETRYABLE_STATUSES",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "Checkpoint",
    "DomainEvent",
    "PermissionPolicy",
    "Session",
    "SessionEventType",
    "SessionLimits",
    "SessionMetrics",
    "SessionPriority",
    "SessionStatus",
    "SessionType",
    "Usage",
    "budget_exhausted",
    "can_transition",
    "ensure_transition",
    "health_score",
    "next_sequence",
    "tokens_counted",
]
