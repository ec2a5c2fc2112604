"""Session behaviour: each verb's effects, versions, events, retries, expiry and deletion."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from orchestrator.common.errors import FailedPrecondition, InvalidArgument
from orchestrator.session.domain import (
    PermissionPolicy,
    Session,
    SessionEventType,
    SessionLimits,
    SessionPriority,
    SessionStatus,
    SessionType,
    Usage,
)

MakeSession = Callable[..., Session]
S = SessionStatus
E = SessionEventType


def test_create_makes_a_pending_session_at_version_1(t0: datetime) -> None:
    session = Session.create(now=t0, title="  IND-7 ship it  ", initial_prompt="Ship it.")
    assert uuid.UUID(session.id).version == 4
    assert (session.status, session.version, session.title) == (S.PENDING, 1, "IND-7 ship it")
    assert session.created_at == session.updated_at == session.status_updated_at == t0
    assert session.max_duration_seconds == 3_600
    assert session.limits == SessionLimits(max_retries=3)
    assert session.permission_policy is PermissionPolicy.ESCALATE
    assert (session.session_type, session.priority) == (
        SessionType.EXECUTION,
        SessionPriority.MEDIUM,
    )
    [event] = session.pull_events()
    assert (event.type, event.version, event.previous_status) == (E.CREATED, 1, None)


def test_create_keeps_a_given_id_in_canonical_form(t0: datetime) -> None:
    ident = uuid.uuid4()
    session = Session.create(now=t0, title="t", initial_prompt="p", session_id=str(ident).upper())
    assert session.id == str(ident)


def test_create_accepts_enum_values_as_strings(t0: datetime) -> None:
    session = Session.create(
        now=t0,
        title="t",
        initial_prompt="p",
        session_type="review",
        priority="critical",
        permission_policy="deny",
    )
    assert session.session_type is SessionType.REVIEW
    assert session.priority is SessionPriority.CRITICAL
    assert session.permission_policy is PermissionPolicy.DENY


def test_timestamps_are_kept_in_utc(t0: datetime) -> None:
    elsewhere = t0.astimezone(timezone(timedelta(hours=2)))
    session = Session.create(now=elsewhere, title="t", initial_prompt="p")
    assert session.created_at.utcoffset() == timedelta(0)
    assert session.created_at == t0


def test_a_naive_now_is_a_programming_error(make_session: MakeSession) -> None:
    with pytest.raises(ValueError, match="time zone"):
        make_session().start(datetime(2025, 3, 1, 12, 0))


@pytest.mark.parametrize("first", ["pending", "queued"])
def test_start_begins_the_attempt(make_session: MakeSession, t0: datetime, first: str) -> None:
    session = make_session(first)
    session.start(t0 + timedelta(seconds=30), actor="scheduler")
    assert session.status is S.RUNNING
    assert session.metrics.started_at == session.status_updated_at == t0 + timedelta(seconds=30)
    [event] = session.pull_events()
    assert (event.type, event.previous_status, event.actor) == (E.STARTED, first, "scheduler")


def test_pause_and_resume_keep_the_attempt_clock(make_session: MakeSession, t0: datetime) -> None:
    session = make_session("running")
    session.pause(t0 + timedelta(minutes=1), reason="user asked")
    assert (session.status, session.status_reason) == (S.PAUSED, "user asked")
    session.resume(t0 + timedelta(minutes=2))
    assert session.status is S.RUNNING
    assert session.metrics.started_at == t0
    assert [e.type for e in session.pull_events()] == [E.PAUSED, E.RESUMED]


def test_resume_recovers_a_degraded_session(make_session: MakeSession, t0: datetime) -> None:
    session = make_session("degraded")
    session.resume(t0)
    assert session.status is S.RUNNING


def test_complete_records_result_and_duration(make_session: MakeSession, t0: datetime) -> None:
    session = make_session("running")
    session.complete(t0 + timedelta(minutes=10), {"summary": "done", "files": [1, 2]})
    assert session.status is S.COMPLETED
    assert session.result == {"summary": "done", "files": [1, 2]}
    assert session.metrics.completed_at == t0 + timedelta(minutes=10)
    assert session.metrics.duration_seconds == 600.0
    assert session.pull_events()[0].type is E.COMPLETED


def test_complete_partial(make_session: MakeSession, t0: datetime) -> None:
    session = make_session("running")
    session.complete(t0 + timedelta(minutes=1), partial=True)
    assert session.status is S.PARTIALLY_COMPLETED
    assert session.result == {}
    assert session.pull_events()[0].type is E.PARTIALLY_COMPLETED


def test_a_degraded_session_cannot_complete_partially(
    make_session: MakeSession, t0: datetime
) -> None:
    with pytest.raises(FailedPrecondition, match="cannot go to partially_completed"):
        make_session("degraded").complete(t0, partial=True)


def test_complete_refuses_a_result_that_is_not_json(
    make_session: MakeSession, t0: datetime
) -> None:
    session = make_session("running")
    with pytest.raises(InvalidArgument, match="result") as refused:
        session.complete(t0, {"when": t0})
    assert refused.value.field == "result"
    assert (session.status, session.version) == (S.RUNNING, 1)


def test_fail_records_the_error(make_session: MakeSession, t0: datetime) -> None:
    session = make_session("running")
    session.fail(t0 + timedelta(seconds=5), "agent crashed")
    assert (session.status, session.error, session.status_reason) == (
        S.FAILED,
        "agent crashed",
        "agent crashed",
    )
    assert session.metrics.completed_at == t0 + timedelta(seconds=5)
    assert session.metrics.duration_seconds == 5.0


@pytest.mark.parametrize(
    ("verb", "field"),
    [
        (lambda s, at: s.fail(at, "  "), "error"),
        (lambda s, at: s.degrade(at, ""), "reason"),
    ],
)
def test_failure_and_degradation_must_say_why(
    make_session: MakeSession,
    t0: datetime,
    verb: Callable[[Session, datetime], None],
    field: str,
) -> None:
    session = make_session("running")
    with pytest.raises(InvalidArgument) as refused:
        verb(session, t0)
    assert refused.value.field == field
    assert field in refused.value.message
    assert session.version == 1


def test_time_out(make_session: MakeSession, t0: datetime) -> None:
    session = make_session("running", max_duration_seconds=60)
    session.time_out(t0 + timedelta(seconds=61))
    assert session.status is S.TIMEOUT
    assert session.error == "timed out: max duration of 60 s passed"
    assert session.pull_events()[0].type is E.TIMED_OUT


def test_retry_from_failed_starts_a_fresh_attempt(make_session: MakeSession, t0: datetime) -> None:
    session = make_session("running")
    session.fail(t0 + timedelta(minutes=1), "boom")
    assert session.retry(t0 + timedelta(minutes=2)) is None
    assert (session.status, session.metrics.retry_count, session.error) == (S.PENDING, 1, "")
    assert session.metrics.started_at is None and session.metrics.completed_at is None
    assert session.status_reason == "retry 1 of 3"
    session.start(t0 + timedelta(minutes=3))
    assert session.metrics.started_at == t0 + timedelta(minutes=3)


def test_a_retried_session_whose_work_is_done_completes_as_it_starts(
    make_session: MakeSession, t0: datetime
) -> None:
    session = make_session("running")
    session.time_out(t0 + timedelta(minutes=1))
    session.retry(t0 + timedelta(minutes=2))
    session.pull_events()
    session.start(t0 + timedelta(minutes=3), work_done=True)
    assert session.status is S.COMPLETED
    assert [e.type for e in session.pull_events()] == [E.STARTED, E.COMPLETED]


def test_a_first_start_ignores_work_done(make_session: MakeSession, t0: datetime) -> None:
    # Only a retry can find its work finished: a first start has run nothing yet.
    session = make_session("pending")
    session.start(t0, work_done=True)
    assert session.status is S.RUNNING


def test_retry_returns_the_latest_checkpoint(make_session: MakeSession, t0: datetime) -> None:
    session = make_session("running")
    session.add_checkpoint(t0, {"step": 1})
    latest = session.add_checkpoint(t0, {"step": 2})
    session.time_out(t0 + timedelta(hours=1))
    session.pull_events()
    assert session.retry(t0 + timedelta(hours=2)) == latest
    [event] = session.pull_events()
    assert (event.type, event.checkpoint, event.previous_status) == (E.RETRIED, latest, S.TIMEOUT)


def test_retry_stops_at_the_limit(make_session: MakeSession, t0: datetime) -> None:
    session = make_session("failed", limits=SessionLimits(max_retries=2))
    for _ in range(2):
        session.retry(t0)
        session.fail(t0, "again")
    with pytest.raises(FailedPrecondition, match=r"used 2 of 2 retries \(limits.max_retries\)"):
        session.retry(t0)
    assert (session.status, session.metrics.retry_count) == (S.FAILED, 2)


def test_no_retry_when_max_retries_is_zero(make_session: MakeSession, t0: datetime) -> None:
    session = make_session("timeout", limits=SessionLimits(max_retries=0))
    with pytest.raises(FailedPrecondition, match="used 0 of 0 retries"):
        session.retry(t0)


def test_each_mutation_bumps_version_once_and_records_one_event(
    make_session: MakeSession, t0: datetime
) -> None:
    session = make_session()
    steps: list[tuple[Callable[[datetime], object], SessionEventType]] = [
        (lambda at: session.queue(at), E.QUEUED),
        (lambda at: session.start(at), E.STARTED),
        (lambda at: session.add_checkpoint(at, {"a": 1}), E.CHECKPOINT_ADDED),
        (lambda at: session.record_usage(at, usage=Usage(input_tokens=5)), E.USAGE_RECORDED),
        (lambda at: session.degrade(at, "slow"), E.DEGRADED),
        (lambda at: session.resume(at), E.RESUMED),
        (lambda at: session.pause(at), E.PAUSED),
        (lambda at: session.resume(at), E.RESUMED),
        (lambda at: session.fail(at, "x"), E.FAILED),
        (lambda at: session.retry(at), E.RETRIED),
        (lambda at: session.start(at), E.STARTED),
        (lambda at: session.stop(at, reason="enough"), E.STOPPED),
        (lambda at: session.delete(at), E.DELETED),
    ]
    for minute, (step, expected) in enumerate(steps, start=1):
        at = t0 + timedelta(minutes=minute)
        version = session.version
        step(at)
        [event] = session.pull_events()
        assert (session.version, session.updated_at) == (version + 1, at)
        assert (event.type, event.version, event.occurred_at) == (expected, version + 1, at)
        assert (event.session_id, event.status) == (session.id, session.status)


def test_status_changes_move_status_updated_at_but_other_changes_do_not(
    make_session: MakeSession, t0: datetime
) -> None:
    session = make_session("running")
    session.add_checkpoint(t0 + timedelta(minutes=1), {})
    session.record_usage(t0 + timedelta(minutes=2), tasks_total=3)
    assert session.status_updated_at == t0
    [checkpoint_event, usage_event] = session.pull_events()
    assert checkpoint_event.previous_status is None and usage_event.previous_status is None
    session.pause(t0 + timedelta(minutes=3))
    assert session.status_updated_at == t0 + timedelta(minutes=3)


def test_pull_events_returns_then_forgets(make_session: MakeSession, t0: datetime) -> None:
    session = make_session()
    session.queue(t0)
    assert len(session.pull_events()) == 1
    assert session.pull_events() == []


def test_record_usage_adds_tokens_and_sets_counts(make_session: MakeSession, t0: datetime) -> None:
    session = make_session("completed")  # late reports still count
    session.record_usage(
        t0, usage=Usage(input_tokens=10, cost_usd=0.5), tasks_total=4, tasks_completed=1
    )
    session.record_usage(
        t0,
        usage=Usage(
            input_tokens=5,
            output_tokens=7,
            reasoning_tokens=1,
            cache_read_tokens=2,
            cache_write_tokens=3,
            cost_usd=0.25,
        ),
        tasks_completed=3,
        tasks_failed=1,
    )
    metrics = session.metrics
    assert metrics.usage == Usage(15, 7, 1, 2, 3, 0.75)
    assert (
        metrics.tasks_total,
        metrics.tasks_completed,
        metrics.tasks_failed,
        metrics.tasks_skipped,
    ) == (4, 3, 1, 0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"usage": Usage(input_tokens=-1)}, "usage.input_tokens"),
        ({"usage": Usage(cache_write_tokens=-1)}, "usage.cache_write_tokens"),
        ({"usage": Usage(cost_usd=float("nan"))}, "usage.cost_usd"),
        ({"tasks_total": -1}, "tasks_total"),
        ({"tasks_skipped": -2}, "tasks_skipped"),
    ],
)
def test_record_usage_refuses_negatives(
    make_session: MakeSession, t0: datetime, kwargs: dict[str, object], field: str
) -> None:
    session = make_session("running")
    with pytest.raises(InvalidArgument) as refused:
        session.record_usage(t0, **kwargs)  # type: ignore[arg-type]
    assert refused.value.field == field and field in refused.value.message
    assert session.version == 1 and session.metrics.usage == Usage()


def test_delete_is_soft_and_final(make_session: MakeSession, t0: datetime) -> None:
    session = make_session("completed")
    session.delete(t0 + timedelta(days=1), actor="alice")
    assert session.deleted_at == t0 + timedelta(days=1)
    with pytest.raises(FailedPrecondition, match="was deleted"):
        session.delete(t0 + timedelta(days=2))
    with pytest.raises(FailedPrecondition, match="was deleted"):
        session.record_usage(t0, tasks_total=1)
    assert session.version == 2


@pytest.mark.parametrize("status", ["running", "paused", "degraded"])
def test_delete_refuses_a_session_still_at_work(
    make_session: MakeSession, t0: datetime, status: str
) -> None:
    with pytest.raises(FailedPrecondition, match="stop it before deleting"):
        make_session(status).delete(t0)


def test_is_overdue_only_for_active_sessions_past_their_deadline(
    make_session: MakeSession, t0: datetime
) -> None:
    session = make_session("running", max_duration_seconds=600)
    assert session.deadline == t0 + timedelta(seconds=600)
    assert not session.is_overdue(t0 + timedelta(seconds=599))
    assert session.is_overdue(t0 + timedelta(seconds=600))
    for status in ["pending", "queued", "failed", "timeout", "completed", "stopped"]:
        settled = make_session(status)
        assert settled.deadline is None
        assert not settled.is_overdue(t0 + timedelta(days=2))


@pytest.mark.parametrize(
    ("status", "ends_as", "event"),
    [
        ("running", S.TIMEOUT, E.TIMED_OUT),
        ("degraded", S.FAILED, E.FAILED),
        ("paused", S.STOPPED, E.STOPPED),
    ],
)
def test_expire_takes_the_path_the_status_allows(
    make_session: MakeSession,
    t0: datetime,
    status: str,
    ends_as: SessionStatus,
    event: SessionEventType,
) -> None:
    session = make_session(status, max_duration_seconds=60)
    session.expire(t0 + timedelta(seconds=60))
    assert session.status is ends_as
    assert "max duration of 60 s passed" in session.status_reason
    assert [e.type for e in session.pull_events()] == [event]


def test_expire_refuses_a_session_with_time_left(make_session: MakeSession, t0: datetime) -> None:
    with pytest.raises(FailedPrecondition, match="not overdue"):
        make_session("running").expire(t0 + timedelta(seconds=10))
