"""Expires TEMPORARY contexts past their expires_at: soft delete plus `context.expired`.

Every replica may run one: rows are claimed with FOR UPDATE SKIP LOCKED and written with a
version check, so each context expires exactly once. Reads do not wait for it: an expired
context is NOT_FOUND from the moment it expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from orchestrator.context.service import ContextService

log = logging.getLogger(__name__)


class ExpirySweeper:
    def __init__(self, service: ContextService, interval_seconds: float) -> None:
        self._service = service
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None
        self.expired = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="context-expiry-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                count = await self._service.expire_due()
                self.expired += count
                if count:
                    log.info("expired %d temporary contexts", count)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("expiry sweep failed; trying again")
            await asyncio.sleep(self._interval)
