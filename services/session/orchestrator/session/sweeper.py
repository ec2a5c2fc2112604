"""Moves sessions past their max duration to TIMEOUT (or FAILED/STOPPED, see Session.expire).

Every replica may run one: rows are claimed with FOR UPDATE SKIP LOCKED and saved with a
version check, so each overdue session is ended exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from orchestrator.session.service import SessionService

log = logging.getLogger(__name__)


class TimeoutSweeper:
    def __init__(self, service: SessionService, interval_seconds: float) -> None:
        self._service = service
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None
        self.expired = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="session-timeout-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                count = await self._service.expire_overdue()
                self.expired += count
                if count:
                    log.info("ended %d overdue sessions", count)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("timeout sweep failed; trying again")
            await asyncio.sleep(self._interval)
