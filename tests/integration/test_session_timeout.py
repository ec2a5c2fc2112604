"""The timeout sweeper: overdue sessions end exactly once, even with several replicas."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from orchestrator.common.db import migrate
from orchestrator.session.domain import SessionStatus
from orchestrator.session.service import SessionService

pytestmark = pytest.mark.timeout(60)


async def test_overdue_sessions_end_once_across_concurrent_sweepers(pool: asyncpg.Pool) -> None:
    await migrate(pool, "session", "orchestrator.session.migrations")
    start = datetime.now(UTC)
    service = SessionService(pool, clock=lambda: start)
    running = await service.create(title="IND-T", initial_prompt="p", max_duration_seconds=60)
    paused = await service.create(title="IND-T", initial_prompt="p", max_duration_seconds=60)
    fresh = await service.create(title="IND-T", initial_prompt="p", max_duration_seconds=600)
    for s in (running, paused, fresh):
        await service.change(s.id, None, lambda x, now: x.start(now))
    await service.change(paused.id, None, lambda x, now: x.pause(now))

    later = SessionService(pool, clock=lambda: start + timedelta(seconds=61))
    counts = await asyncio.gather(*(later.expire_overdue() for _ in range(4)))
    assert sum(counts) >= 2

    assert (await later.get(running.id)).status is SessionStatus.TIMEOUT
    assert (await later.get(paused.id)).status is SessionStatus.STOPPED
    assert (await later.get(fresh.id)).status is SessionStatus.RUNNING
    # created, started, timed out: one transition each, none applied twice.
    assert (await later.get(running.id)).version == 3
    assert (await later.get(paused.id)).version == 4
