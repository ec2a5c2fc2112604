"""Backoff and a circuit breaker for calls to the OpenCode server.

The breaker keeps a worker from hammering a server that is down: after `threshold` failures in
a row it opens and refuses calls at once for `reset_seconds`, then lets one trial call through
(half-open); that call's success closes it, its failure opens it again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backoff:
    base_seconds: float = 0.2
    cap_seconds: float = 5.0
    # Each delay is scaled by a random factor in [1 - jitter, 1] so retries do not align.
    jitter: float = 0.5

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `attempt` (0 = the first retry)."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2.0**attempt)
        return ceiling * (1.0 - self.jitter * rng())


class CircuitOpenError(RuntimeError):
    """The breaker is open: the server failed too often lately, so the call was not made."""


@dataclass
class CircuitBreaker:
    threshold: int = 5
    reset_seconds: float = 10.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    _opened_at: float | None = field(default=None, repr=False)
    _trial_running: bool = field(default=False, repr=False)

    @property
    def state(self) -> str:
        """closed, open or half_open."""
        if self._opened_at is None:
            return "closed"
        if self.clock() - self._opened_at < self.reset_seconds:
            return "open"
        return "half_open"

    def before_call(self) -> None:
        """Raises CircuitOpenError unless a call may be made now."""
        state = self.state
        if state == "open":
            left = self.reset_seconds - (self.clock() - (self._opened_at or 0.0))
            raise CircuitOpenError(
                f"OpenCode server failed {self.failures} times in a row; "
                f"not calling it for another {left:.1f}s"
            )
        if state == "half_open":
            if self._trial_running:
                raise CircuitOpenError("OpenCode server is being probed after failures")
            self._trial_running = True

    def succeeded(self) -> None:
        self.failures = 0
        self._opened_at = None
        self._trial_running = False

    def failed(self) -> None:
        self.failures += 1
        self._trial_running = False
        if self._opened_at is not None or self.failures >= self.threshold:
            self._opened_at = self.clock()
