"""How a session is classified: its type, its priority and how its permission prompts are answered.

Values are the proto enum names without their prefix, lower-cased; UNSPECIFIED has no member
because the servicer resolves it to a default before the domain sees it.
"""

from __future__ import annotations

from enum import StrEnum


class SessionType(StrEnum):
    PLANNING = "planning"
    EXECUTION = "execution"
    REVIEW = "review"
    DEBUG = "debug"
    INTEGRATION = "integration"


class SessionPriority(StrEnum):
    """CRITICAL is the most urgent. Compare by `rank`, not by value (values sort alphabetically)."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    DEFERRED = "deferred"

    @property
    def rank(self) -> int:
        """0 for CRITICAL up to 4 for DEFERRED, as SPEC §2 numbers them."""
        return _PRIORITY_RANKS[self]


_PRIORITY_RANKS: dict[SessionPriority, int] = {p: rank for rank, p in enumerate(SessionPriority)}


class PermissionPolicy(StrEnum):
    """How OpenCode permission requests of the session's tasks are answered."""

    ALLOW = "allow"
    DENY = "deny"
    ESCALATE = "escalate"
