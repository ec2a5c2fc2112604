"""Builders for sessions in any status; a stored session is rebuilt the same way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator.session.domain import Session, SessionStatus

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

# Statuses whose attempt has a start time when a real session reaches them.
_STARTED = {
    "running",
    "paused",
    "degraded",
    "completed",
    "partially_completed",
    "failed",
    "timeout",
    "stopped",
}


@pytest.fixture
def t0() -> datetime:
    return T0


@pytest.fixture
def make_session() -> Callable[..., Session]:
    def make(status: SessionStatus | str = "pending", **fields: Any) -> Session:
        fields.setdefault("title", "IND-1 refactor the billing module")
        fields.setdefault("initial_prompt", "Split billing.py into one module per concept.")
        session = Session.create(now=T0, **fields)
        session.status = SessionStatus(status)
        if session.status in _STARTED:
            session.metrics.started_at = T0
        session.pull_events()
        return session

    return make
