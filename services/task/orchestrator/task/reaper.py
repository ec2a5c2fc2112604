"""Sends tasks whose lease ran out back to READY, so their work is routed again.

Every replica may run one: each expired task is re-read under its session's advisory lock
(the lock every task write takes) and requeued only if its lease is still the expired one, so
two reapers never requeue the same lease twice and never race a worker's renewal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from orchestrator.task.service import TaskService

log = logging.getLogger(__name__)


class LeaseReaper:
    def __init__(self, service: TaskService, interval_seconds: float) -> None:
        self._service = service
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None
        self.reaped = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="task-lease-reaper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                count = await self._service.reap_expired_leases()
                self.reaped += count
                if count:
                    log.info("requeued %d tasks whose lease ran out", count)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("lease reaping failed; trying again")
            await asyncio.sleep(self._interval)
