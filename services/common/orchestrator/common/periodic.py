"""A background job that runs a sweep again and again: timeouts, expiries, lease reaping.

The sweep returns how many items it handled. When it handled some, it runs again at once, so a
backlog drains without waiting; when it handled none, the job sleeps for the interval. A failing
sweep is logged and tried again after the interval: a sweeper must outlive a database blip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(
        self,
        name: str,
        sweep: Callable[[], Awaitable[int]],
        interval_seconds: float,
        *,
        done: str = "handled %d items",
    ) -> None:
        self.name = name
        self._sweep = sweep
        self._interval = interval_seconds
        self._done = done
        self._task: asyncio.Task[None] | None = None
        self.handled = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                count = await self._sweep()
                self.handled += count
                if count:
                    log.info("%s: " + self._done, self.name, count)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed; trying again in %.1fs", self.name, self._interval)
            await asyncio.sleep(self._interval)
