"""A session's health score: one number from 0 to 1 for dashboards and the scheduler."""

from __future__ import annotations

from datetime import datetime

from .status import ACTIVE_STATUSES, SessionStatus

_S = SessionStatus

_SETTLED: dict[SessionStatus, float] = {
    _S.COMPLETED: 1.0,
    _S.PARTIALLY_COMPLETED: 0.6,
    _S.STOPPED: 0.5,
    _S.FAILED: 0.0,
    _S.TIMEOUT: 0.0,
    _S.CANCELLED: 0.0,
    _S.ORPHANED: 0.0,
}

CALM_FRACTION = 0.5  # the first half of the allowed time costs nothing
FLOOR_AT_LIMIT = 0.2
DEGRADED_CAP = 0.5


def health_score(
    status: SessionStatus,
    started_at: datetime | None,
    max_duration_seconds: int,
    now: datetime,
) -> float:
    """Health from status and, for a running clock, how much of the allowed time is used.

    - settled states: COMPLETED 1.0, PARTIALLY_COMPLETED 0.6, STOPPED 0.5,
      FAILED / TIMEOUT / CANCELLED / ORPHANED 0.0;
    - PENDING and QUEUED: 1.0 (their clock has not started);
    - RUNNING, PAUSED, DEGRADED with f = elapsed / max_duration_seconds:
      1.0 while f <= 0.5, then 1.0 - 0.8 * (f - 0.5) / 0.5, reaching 0.2 at f = 1 and staying
      there once overdue (the sweeper ends such sessions); DEGRADED is capped at 0.5.
    """
    if status in _SETTLED:
        return _SETTLED[status]
    if status not in ACTIVE_STATUSES or started_at is None:
        return 1.0
    score = _time_score(_elapsed_fraction(started_at, max_duration_seconds, now))
    if status is _S.DEGRADED:
        return min(score, DEGRADED_CAP)
    return score


def _elapsed_fraction(started_at: datetime, max_duration_seconds: int, now: datetime) -> float:
    elapsed = max(0.0, (now - started_at).total_seconds())
    return elapsed / max_duration_seconds if max_duration_seconds > 0 else 1.0


def _time_score(fraction: float) -> float:
    late = min(1.0, max(0.0, (fraction - CALM_FRACTION) / (1.0 - CALM_FRACTION)))
    return 1.0 - (1.0 - FLOOR_AT_LIMIT) * late
