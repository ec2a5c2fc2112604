"""Checkpoint sequencing: strictly increasing from the latest, never reused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from orchestrator.common.errors import FailedPrecondition, InvalidArgument
from orchestrator.session.domain import Session, SessionEventType

MakeSession = Callable[..., Session]

NON_TERMINAL = ["pending", "queued", "running", "paused", "degraded", "failed", "timeout"]
TERMINAL = ["completed", "partially_completed", "stopped", "cancelled", "orphaned"]


def test_sequence_zero_takes_the_next_number(make_session: MakeSession, t0: datetime) -> None:
    session = make_session("running")
    numbers = [session.add_checkpoint(t0, {"i": i}).sequence for i in range(3)]
    assert numbers == [1, 2, 3]
    assert session.metrics.checkpoint_count == 3
    assert session.version == 4


def test_checkpoint_carries_who_when_and_what(make_session: MakeSession, t0: datetime) -> None:
    session = make_session("running")
    at = t0 + timedelta(minutes=3)
    checkpoint = session.add_checkpoint(at, {"files": ["a.py"]}, created_by="agent-7")
    assert (checkpoint.session_id, checkpoint.created_at, checkpoint.created_by) == (
        session.id,
        at,
        "agent-7",
    )
    assert session.latest_checkpoint == checkpoint
    [event] = session.pull_events()
    assert (event.type, event.checkpoint) == (SessionEventType.CHECKPOINT_ADDED, checkpoint)


def test_checkpoint_data_is_copied(make_session: MakeSession, t0: datetime) -> None:
    data: dict[str, object] = {"files": ["a.py"]}
    checkpoint = make_session("running").add_checkpoint(t0, data)
    data["files"] = []
    assert checkpoint.data == {"files": ["a.py"]}


def test_an_explicit_greater_sequence_is_accepted(make_session: MakeSession, t0: datetime) -> None:
    session = make_session("running")
    session.add_checkpoint(t0, {})
    assert session.add_checkpoint(t0, {}, sequence=10).sequence == 10
    assert session.add_checkpoint(t0, {}).sequence == 11


@pytest.mark.parametrize("sequence", [3, 2, -1])
def test_an_equal_lower_or_negative_sequence_is_refused(
    make_session: MakeSession, t0: datetime, sequence: int
) -> None:
    session = make_session("running")
    session.add_checkpoint(t0, {}, sequence=3)
    with pytest.raises(InvalidArgument, match="sequence") as refused:
        session.add_checkpoint(t0, {}, sequence=sequence)
    assert refused.value.field == "sequence"
    assert session.latest_checkpoint is not None and session.latest_checkpoint.sequence == 3
    assert (session.version, session.metrics.checkpoint_count) == (2, 1)


def test_sequences_are_never_reused_after_a_retry(make_session: MakeSession, t0: datetime) -> None:
    session = make_session("running")
    session.add_checkpoint(t0, {"step": 1})
    session.add_checkpoint(t0, {"step": 2})
    session.fail(t0, "crash")
    resume_from = session.retry(t0)
    assert resume_from is not None and resume_from.sequence == 2
    session.start(t0)
    with pytest.raises(InvalidArgument):
        session.add_checkpoint(t0, {}, sequence=2)
    assert session.add_checkpoint(t0, {"step": 3}).sequence == 3


@pytest.mark.parametrize("status", NON_TERMINAL)
def test_checkpoints_are_taken_while_the_session_can_resume(
    make_session: MakeSession, t0: datetime, status: str
) -> None:
    assert make_session(status).add_checkpoint(t0, {}).sequence == 1


@pytest.mark.parametrize("status", TERMINAL)
def test_terminal_sessions_take_no_checkpoints(
    make_session: MakeSession, t0: datetime, status: str
) -> None:
    session = make_session(status)
    with pytest.raises(FailedPrecondition, match=f"is {status}; checkpoints"):
        session.add_checkpoint(t0, {})
    assert session.version == 1


def test_checkpoint_data_must_be_json(make_session: MakeSession, t0: datetime) -> None:
    with pytest.raises(InvalidArgument, match=r"data\.files holds a set") as refused:
        make_session("running").add_checkpoint(t0, {"files": {"a.py"}})
    assert refused.value.field == "data"
