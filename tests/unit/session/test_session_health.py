"""Health score by status and by how much of the allowed time is used."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from orchestrator.session.domain import Session

MakeSession = Callable[..., Session]


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [
        (0.0, 1.0),
        (0.25, 1.0),
        (0.5, 1.0),
        (0.625, 0.8),
        (0.75, 0.6),
        (0.9, 0.36),
        (1.0, 0.2),
        (3.0, 0.2),
    ],
)
@pytest.mark.parametrize("status", ["running", "paused"])
def test_active_health_falls_in_the_second_half(
    make_session: MakeSession, t0: datetime, status: str, fraction: float, expected: float
) -> None:
    session = make_session(status, max_duration_seconds=1_000)
    now = t0 + timedelta(seconds=1_000 * fraction)
    assert session.health_score(now) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("fraction", "expected"), [(0.0, 0.5), (0.75, 0.5), (0.9, 0.36), (1.0, 0.2)]
)
def test_degraded_health_is_capped(
    make_session: MakeSession, t0: datetime, fraction: float, expected: float
) -> None:
    session = make_session("degraded", max_duration_seconds=1_000)
    now = t0 + timedelta(seconds=1_000 * fraction)
    assert session.health_score(now) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("completed", 1.0),
        ("partially_completed", 0.6),
        ("stopped", 0.5),
        ("failed", 0.0),
        ("timeout", 0.0),
        ("cancelled", 0.0),
        ("orphaned", 0.0),
        ("pending", 1.0),
        ("queued", 1.0),
    ],
)
def test_health_of_settled_and_waiting_sessions_ignores_time(
    make_session: MakeSession, t0: datetime, status: str, expected: float
) -> None:
    session = make_session(status)
    assert session.health_score(t0 + timedelta(days=3)) == expected


def test_a_clock_before_the_start_counts_as_no_time_used(
    make_session: MakeSession, t0: datetime
) -> None:
    assert make_session("running").health_score(t0 - timedelta(hours=1)) == 1.0
