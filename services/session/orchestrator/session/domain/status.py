"""The session status machine: twelve states and the transitions SPEC §2 allows between them."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from orchestrator.common.errors import FailedPrecondition


class SessionStatus(StrEnum):
    """Values are the proto names without the `SESSION_STATUS_` prefix, lower-cased."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    PARTIALLY_COMPLETED = "partially_completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    STOPPED = "stopped"
    CANCELLED = "cancelled"
    DEGRADED = "degraded"
    ORPHANED = "orphaned"


_S = SessionStatus

# Targets are listed in SPEC order so refusal messages read the same as the spec.
TRANSITIONS: dict[SessionStatus, tuple[SessionStatus, ...]] = {
    _S.PENDING: (_S.QUEUED, _S.RUNNING, _S.CANCELLED, _S.FAILED),
    _S.QUEUED: (_S.RUNNING, _S.CANCELLED, _S.FAILED),
    _S.RUNNING: (
        _S.COMPLETED,
        _S.PARTIALLY_COMPLETED,
        _S.FAILED,
        _S.TIMEOUT,
        _S.PAUSED,
        _S.STOPPED,
        _S.DEGRADED,
    ),
    _S.PAUSED: (_S.RUNNING, _S.STOPPED, _S.CANCELLED),
    _S.DEGRADED: (_S.RUNNING, _S.FAILED, _S.COMPLETED, _S.STOPPED),
    _S.FAILED: (_S.PENDING,),
    _S.TIMEOUT: (_S.PENDING,),
    _S.COMPLETED: (),
    _S.PARTIALLY_COMPLETED: (),
    _S.STOPPED: (),
    _S.CANCELLED: (),
    # Nothing leads here under SPEC §2; the state exists on the wire for a future reconciler.
    _S.ORPHANED: (),
}

TERMINAL_STATUSES: frozenset[SessionStatus] = frozenset(
    status for status, targets in TRANSITIONS.items() if not targets
)
"""No way out: COMPLETED, PARTIALLY_COMPLETED, STOPPED, CANCELLED, ORPHANED."""

RETRYABLE_STATUSES: frozenset[SessionStatus] = frozenset({_S.FAILED, _S.TIMEOUT})
"""An attempt ended badly but `retry` may send the session back to PENDING."""

ACTIVE_STATUSES: frozenset[SessionStatus] = frozenset({_S.RUNNING, _S.PAUSED, _S.DEGRADED})
"""Started and not yet ended: the session's clock runs, so the timeout sweeper watches these.

QUEUED is left out on purpose: `max_duration_seconds` bounds a run, not the wait for a slot,
and a queued session has no `started_at` to measure from. PAUSED stays in: a paused session
still holds its worktrees and leases, so pausing does not stop the clock.
"""

ENDED_STATUSES: frozenset[SessionStatus] = TERMINAL_STATUSES | RETRYABLE_STATUSES
"""An attempt is over: `completed_at` and `duration_seconds` are set on entering these."""


def can_transition(current: SessionStatus, target: SessionStatus) -> bool:
    return target in TRANSITIONS[current]


def ensure_transition(session_id: str, current: SessionStatus, target: SessionStatus) -> None:
    """Raises FailedPrecondition naming both states and what `current` does allow."""
    if can_transition(current, target):
        return
    raise FailedPrecondition(
        f"session {session_id} is {current}; it cannot go to {target} "
        f"(allowed from {current}: {_names(TRANSITIONS[current])})"
    )


def _names(statuses: Iterable[SessionStatus]) -> str:
    return ", ".join(statuses) or "none"
