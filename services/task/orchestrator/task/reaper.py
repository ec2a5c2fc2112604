"""The lease reaper's sight: leases that ran out while nobody could renew them are not reaped.

A worker renews its lease through this service, which writes it to PostgreSQL. While the
database or this process is down, no renewal can land, so a lease that lapsed meanwhile says
nothing of its worker. After such a blind spell (the reaper could not look for longer than
`blind_after` seconds, or it has just started) it holds off for `grace` seconds, time for every
live worker to renew or report; whatever is still expired then is reaped. Without this, a database
failover of a few seconds would send running tasks back to READY and run them twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# The longest a live worker waits between two tries of a report or renewal is 8 s.
REAP_GRACE_SECONDS = 10.0


class Sight:
    def __init__(
        self, blind_after: float, grace: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._blind_after = blind_after
        self._grace = grace
        self._clock = clock
        self._last: float | None = None
        self._quiet_until = 0.0

    def looked(self) -> bool:
        """Records that the reaper could read the leases just now; True when it may reap."""
        now = self._clock()
        if self._last is None or now - self._last > self._blind_after:
            self._quiet_until = now + self._grace
        self._last = now
        return now >= self._quiet_until
