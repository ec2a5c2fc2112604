"""Budgets: an exhausted token or cost budget pauses a running session with the reason, and
resume or retry is refused until the budget is raised."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from orchestrator.common.errors import FailedPrecondition, InvalidArgument
from orchestrator.session.domain import (
    Session,
    SessionEventType,
    SessionLimits,
    SessionStatus,
    Usage,
    budget_exhausted,
    tokens_counted,
)

MakeSession = Callable[..., Session]
S = SessionStatus
E = SessionEventType


def test_tokens_counted_are_input_output_and_reasoning() -> None:
    usage = Usage(input_tokens=5, output_tokens=7, reasoning_tokens=11, cache_read_tokens=1000)
    assert tokens_counted(usage) == 23


@pytest.mark.parametrize(
    ("limits", "usage", "reason"),
    [
        (SessionLimits(), Usage(input_tokens=10**9, cost_usd=1e6), ""),
        (SessionLimits(token_budget=1000), Usage(input_tokens=999), ""),
        (
            SessionLimits(token_budget=1000),
            Usage(input_tokens=1000),
            "token budget exhausted: 1,000 of 1,000 tokens",
        ),
        (
            SessionLimits(token_budget=1000),
            Usage(input_tokens=900, output_tokens=300),
            "token budget exhausted: 1,200 of 1,000 tokens",
        ),
        (SessionLimits(token_budget=1000), Usage(input_tokens=1, cache_read_tokens=5000), ""),
        (SessionLimits(cost_budget_usd=0.5), Usage(cost_usd=0.49), ""),
        (
            SessionLimits(cost_budget_usd=0.5),
            Usage(cost_usd=0.75),
            "cost budget exhausted: $0.7500 of $0.5000",
        ),
    ],
)
def test_budget_exhausted_once_usage_reaches_the_budget(
    limits: SessionLimits, usage: Usage, reason: str
) -> None:
    assert budget_exhausted(limits, usage) == reason


def _over(make_session: MakeSession, status: str, **limits: int | float) -> Session:
    session = make_session(status, limits=SessionLimits(**limits))  # type: ignore[arg-type]
    session.metrics.usage = Usage(input_tokens=900, output_tokens=300, cost_usd=0.02)
    return session


def test_a_running_session_over_its_token_budget_pauses_with_the_reason(
    make_session: MakeSession, t0: datetime
) -> None:
    session = _over(make_session, "running", token_budget=1000)
    assert session.pause_if_over_budget(t0, actor="choreography") is True
    assert session.status is S.PAUSED
    assert session.status_reason == "token budget exhausted: 1,200 of 1,000 tokens"
    [event] = session.pull_events()
    assert (event.type, event.previous_status, event.reason) == (
        E.PAUSED,
        S.RUNNING,
        session.status_reason,
    )
    assert session.version == 2


def test_a_degraded_session_over_budget_pauses_through_running_in_one_change(
    make_session: MakeSession, t0: datetime
) -> None:
    session = _over(make_session, "degraded", cost_budget_usd=0.01)
    assert session.pause_if_over_budget(t0) is True
    resumed, paused = session.pull_events()
    assert (resumed.type, resumed.previous_status) == (E.RESUMED, S.DEGRADED)
    assert (paused.type, paused.previous_status, paused.status) == (E.PAUSED, S.RUNNING, S.PAUSED)
    assert paused.reason == "cost budget exhausted: $0.0200 of $0.0100"
    assert session.version == 3


@pytest.mark.parametrize("status", [s for s in S if s not in (S.RUNNING, S.DEGRADED)])
def test_only_running_or_degraded_sessions_pause_for_a_budget(
    make_session: MakeSession, t0: datetime, status: SessionStatus
) -> None:
    session = _over(make_session, status, token_budget=1000)
    assert session.pause_if_over_budget(t0) is False
    assert session.status is status and session.version == 1 and not session.pull_events()


def test_within_budget_or_unlimited_nothing_happens(
    make_session: MakeSession, t0: datetime
) -> None:
    for limits in ({}, {"token_budget": 1201}, {"cost_budget_usd": 0.03}):
        session = _over(make_session, "running", **limits)
        assert session.pause_if_over_budget(t0) is False
        assert session.status is S.RUNNING and session.version == 1


def test_a_deleted_session_never_pauses(make_session: MakeSession, t0: datetime) -> None:
    session = _over(make_session, "failed", token_budget=1000)
    session.delete(t0)
    session.status = S.RUNNING
    assert session.pause_if_over_budget(t0) is False


def test_resume_is_refused_while_a_budget_is_exhausted(
    make_session: MakeSession, t0: datetime
) -> None:
    session = _over(make_session, "paused", token_budget=1000)
    with pytest.raises(FailedPrecondition, match="token budget exhausted: 1,200 of 1,000"):
        session.resume(t0)
    with pytest.raises(FailedPrecondition, match="cannot resume"):
        session.resume(t0, token_budget=1200)  # reached is exhausted
    assert session.status is S.PAUSED and session.version == 1
    assert session.limits.token_budget == 1000 and not session.pull_events()


def test_resume_with_a_raised_budget_keeps_it_and_says_so(
    make_session: MakeSession, t0: datetime
) -> None:
    session = _over(make_session, "paused", token_budget=1000, cost_budget_usd=1.0)
    session.resume(t0 + timedelta(seconds=1), token_budget=5000, actor="ops")
    assert session.status is S.RUNNING
    assert session.limits == SessionLimits(token_budget=5000, cost_budget_usd=1.0)
    [event] = session.pull_events()
    assert event.type is E.RESUMED
    assert event.reason == "budgets changed: token budget 1,000 → 5,000"


def test_resume_with_a_budget_of_zero_makes_it_unlimited(
    make_session: MakeSession, t0: datetime
) -> None:
    session = _over(make_session, "paused", cost_budget_usd=0.01)
    session.resume(t0, cost_budget_usd=0)
    assert session.limits.cost_budget_usd == 0 and session.status is S.RUNNING
    assert session.status_reason == "budgets changed: cost budget $0.0100 → unlimited"


def test_resume_within_budget_changes_no_budget_and_gives_no_reason(
    make_session: MakeSession, t0: datetime
) -> None:
    session = make_session("paused", limits=SessionLimits(token_budget=10))
    session.resume(t0)
    assert session.status_reason == "" and session.limits.token_budget == 10


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"token_budget": -1}, "limits.token_budget"),
        ({"cost_budget_usd": -0.5}, "limits.cost_budget_usd"),
        ({"cost_budget_usd": float("nan")}, "limits.cost_budget_usd"),
    ],
)
def test_a_negative_budget_is_invalid(
    make_session: MakeSession, t0: datetime, kwargs: dict[str, float], field: str
) -> None:
    session = _over(make_session, "paused", token_budget=1000)
    with pytest.raises(InvalidArgument) as caught:
        session.resume(t0, **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field and session.version == 1


def test_resume_checks_its_source_status_before_the_budget(
    make_session: MakeSession, t0: datetime
) -> None:
    session = _over(make_session, "running", token_budget=1000)
    with pytest.raises(FailedPrecondition, match="cannot go to running"):
        session.resume(t0, token_budget=99_999)
    assert session.limits.token_budget == 1000


def test_retry_is_refused_while_a_budget_is_exhausted_and_allowed_once_raised(
    make_session: MakeSession, t0: datetime
) -> None:
    session = _over(make_session, "failed", token_budget=1000)
    with pytest.raises(FailedPrecondition, match="cannot retry: token budget exhausted"):
        session.retry(t0)
    assert (session.status, session.metrics.retry_count) == (S.FAILED, 0)
    session.retry(t0, token_budget=2000)
    assert session.status is S.PENDING and session.limits.token_budget == 2000
    assert session.status_reason == "retry 1 of 3; budgets changed: token budget 1,000 → 2,000"
    assert session.metrics.usage.input_tokens == 900, "usage accumulates over attempts"
