"""The status machine against SPEC §2, written out here rather than read from the code."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from orchestrator.common.errors import FailedPrecondition
from orchestrator.session.domain import (
    ACTIVE_STATUSES,
    RETRYABLE_STATUSES,
    TERMINAL_STATUSES,
    PermissionPolicy,
    Session,
    SessionPriority,
    SessionStatus,
    SessionType,
    can_transition,
)

MakeSession = Callable[..., Session]

ALL = [
    "pending",
    "queued",
    "running",
    "paused",
    "completed",
    "partially_completed",
    "failed",
    "timeout",
    "stopped",
    "cancelled",
    "degraded",
    "orphaned",
]

EXPECTED: dict[str, set[str]] = {
    "pending": {"queued", "running", "cancelled", "failed"},
    "queued": {"running", "cancelled", "failed"},
    "running": {
        "completed",
        "partially_completed",
        "failed",
        "timeout",
        "paused",
        "stopped",
        "degraded",
    },
    "paused": {"running", "stopped", "cancelled"},
    "degraded": {"running", "failed", "completed", "stopped"},
    "failed": {"pending"},
    "timeout": {"pending"},
    "completed": set(),
    "partially_completed": set(),
    "stopped": set(),
    "cancelled": set(),
    "orphaned": set(),
}

PAIRS = [(a, b) for a in ALL for b in ALL]

Verb = Callable[[Session, datetime], object]

# Every verb that can lead to each target; ORPHANED has none because nothing leads there.
VERBS_TO: dict[str, list[Verb]] = {
    "pending": [lambda s, at: s.retry(at)],
    "queued": [lambda s, at: s.queue(at)],
    "running": [lambda s, at: s.start(at), lambda s, at: s.resume(at)],
    "paused": [lambda s, at: s.pause(at)],
    "completed": [lambda s, at: s.complete(at)],
    "partially_completed": [lambda s, at: s.complete(at, partial=True)],
    "failed": [lambda s, at: s.fail(at, "agent crashed")],
    "timeout": [lambda s, at: s.time_out(at)],
    "stopped": [lambda s, at: s.stop(at)],
    "cancelled": [lambda s, at: s.cancel(at)],
    "degraded": [lambda s, at: s.degrade(at, "agent slow")],
    "orphaned": [],
}


def test_enum_values_are_the_proto_names() -> None:
    assert [s.value for s in SessionStatus] == ALL
    assert [t.value for t in SessionType] == [
        "planning",
        "execution",
        "review",
        "debug",
        "integration",
    ]
    assert [p.value for p in PermissionPolicy] == ["allow", "deny", "escalate"]
    assert SessionStatus.RUNNING.value == "running"


def test_priority_ranks() -> None:
    ranks = {p.value: p.rank for p in SessionPriority}
    assert ranks == {"critical": 0, "high": 1, "medium": 2, "low": 3, "deferred": 4}


def test_status_sets() -> None:
    assert set(TERMINAL_STATUSES) == {
        SessionStatus(s)
        for s in ("completed", "partially_completed", "stopped", "cancelled", "orphaned")
    }
    assert set(ACTIVE_STATUSES) == {SessionStatus(s) for s in ("running", "paused", "degraded")}
    assert set(RETRYABLE_STATUSES) == {SessionStatus.FAILED, SessionStatus.TIMEOUT}


@pytest.mark.parametrize(("current", "target"), PAIRS)
def test_can_transition_matches_spec(current: str, target: str) -> None:
    expected = target in EXPECTED[current]
    assert can_transition(SessionStatus(current), SessionStatus(target)) is expected


@pytest.mark.parametrize(("current", "target"), PAIRS)
def test_session_verbs_follow_the_matrix(
    make_session: MakeSession, t0: datetime, current: str, target: str
) -> None:
    later = t0 + timedelta(minutes=5)
    reached = []
    for verb in VERBS_TO[target]:
        session = make_session(current)
        before = (session.version, session.status, session.updated_at)
        try:
            verb(session, later)
        except FailedPrecondition:
            assert (session.version, session.status, session.updated_at) == before
            assert session.events == []
            continue
        assert session.status == target
        assert session.version == before[0] + 1
        reached.append(verb)
    assert bool(reached) is (target in EXPECTED[current])


def test_refusal_names_both_states_and_the_allowed_ones(
    make_session: MakeSession, t0: datetime
) -> None:
    session = make_session("completed")
    with pytest.raises(FailedPrecondition) as refused:
        session.resume(t0)
    assert refused.value.message == (
        f"session {session.id} is completed; it cannot go to running (allowed from completed: none)"
    )


def test_refusal_lists_allowed_targets_in_spec_order(
    make_session: MakeSession, t0: datetime
) -> None:
    session = make_session("paused")
    with pytest.raises(
        FailedPrecondition,
        match=r"allowed from paused: running, stopped, "
        r"cancelled\)",
    ):
        session.queue(t0)


def test_start_from_paused_points_to_resume(make_session: MakeSession, t0: datetime) -> None:
    session = make_session("paused")
    with pytest.raises(FailedPrecondition, match="resume it instead"):
        session.start(t0)


def test_resume_from_pending_points_to_start(make_session: MakeSession, t0: datetime) -> None:
    session = make_session("pending")
    with pytest.raises(FailedPrecondition, match="start it instead"):
        session.resume(t0)
