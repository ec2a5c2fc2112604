"""An agent's track record and the tier it earns.

Rates (each 0..1):
    success_rate         completed / all recorded results; 0 while there are none.
    recent_success_rate  the same over the last RECENT_WINDOW (20) results only.
    routing_success_rate what routing scores: the recent rate, padded to MIN_RESULTS (5) results
                         with pseudo-results at NEW_AGENT_SUCCESS_RATE (0.8), i.e.
                         (completed_recent + 0.8 · pad) / (recent + pad), pad = max(0, 5 - recent).
                         A new agent scores 0.8 (a COMPETENT one), and one early result moves it
                         by a fifth of the way, not all the way to 0 or 1.

Tier, from the overall success rate r once there are at least MIN_RESULTS (5) results:
    ELITE      r > 0.95
    ADVANCED   0.85 <= r <= 0.95
    COMPETENT  0.70 <= r < 0.85   (also every agent with fewer than 5 results)
    TRAINEE    r < 0.70
    DEGRADED   DEGRADED_AFTER_FAILURES (3) consecutive failures, whatever r is; routing skips it.
A PARTIAL result is not a success but ends a run of failures. A DEGRADED agent recovers with a
non-failed result, or when its worker comes back after being OFFLINE (`forgive`): it is out of
routing, so a restart is its way to a fresh chance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from .kinds import TaskOutcome


class PerformanceTier(StrEnum):
    ELITE = "elite"
    ADVANCED = "advanced"
    COMPETENT = "competent"
    TRAINEE = "trainee"
    DEGRADED = "degraded"


_T = PerformanceTier

TIER_MULTIPLIERS: dict[PerformanceTier, float] = {
    _T.ELITE: 1.1,
    _T.ADVANCED: 1.05,
    _T.COMPETENT: 1.0,
    _T.TRAINEE: 0.9,
    _T.DEGRADED: 0.0,
}

DEGRADED_AFTER_FAILURES = 3
MIN_RESULTS = 5
RECENT_WINDOW = 20
NEW_AGENT_SUCCESS_RATE = 0.8
ELITE_ABOVE = 0.95
ADVANCED_FROM = 0.85
COMPETENT_FROM = 0.70


def tier_for(completed: int, results: int, consecutive_failures: int) -> PerformanceTier:
    if consecutive_failures >= DEGRADED_AFTER_FAILURES:
        return _T.DEGRADED
    if results < MIN_RESULTS:
        return _T.COMPETENT
    rate = completed / results
    if rate > ELITE_ABOVE:
        return _T.ELITE
    if rate >= ADVANCED_FROM:
        return _T.ADVANCED
    if rate >= COMPETENT_FROM:
        return _T.COMPETENT
    return _T.TRAINEE


@dataclass(slots=True)
class PerformanceMetrics:
    tasks_completed: int = 0
    tasks_failed: int = 0
    tasks_partial: int = 0
    consecutive_failures: int = 0
    total_duration_seconds: float = 0.0
    quality_total: float = 0.0
    quality_count: int = 0
    # Outcomes of the last RECENT_WINDOW results, oldest first.
    recent: list[TaskOutcome] = field(default_factory=list)
    tier: PerformanceTier = _T.COMPETENT
    last_result_at: datetime | None = None

    @property
    def results(self) -> int:
        return self.tasks_completed + self.tasks_failed + self.tasks_partial

    @property
    def success_rate(self) -> float:
        return self.tasks_completed / self.results if self.results else 0.0

    @property
    def recent_success_rate(self) -> float:
        if not self.recent:
            return 0.0
        return self.recent.count(TaskOutcome.COMPLETED) / len(self.recent)

    @property
    def routing_success_rate(self) -> float:
        seen = len(self.recent)
        pad = max(0, MIN_RESULTS - seen)
        completed = self.recent.count(TaskOutcome.COMPLETED)
        return (completed + NEW_AGENT_SUCCESS_RATE * pad) / (seen + pad)

    @property
    def average_duration_seconds(self) -> float:
        return self.total_duration_seconds / self.results if self.results else 0.0

    @property
    def average_quality_score(self) -> float:
        return self.quality_total / self.quality_count if self.quality_count else 0.0

    def record(
        self, outcome: TaskOutcome, duration_seconds: float, quality: float | None, at: datetime
    ) -> None:
        if outcome is TaskOutcome.COMPLETED:
            self.tasks_completed += 1
            self.consecutive_failures = 0
        elif outcome is TaskOutcome.FAILED:
            self.tasks_failed += 1
            self.consecutive_failures += 1
        else:
            self.tasks_partial += 1
            self.consecutive_failures = 0
        self.total_duration_seconds += duration_seconds
        if quality is not None:
            self.quality_total += quality
            self.quality_count += 1
        self.recent.append(outcome)
        del self.recent[:-RECENT_WINDOW]
        self.last_result_at = at
        self._retier()

    def forgive(self) -> None:
        """Ends a run of failures without a result: the worker came back after an outage."""
        self.consecutive_failures = 0
        self._retier()

    def _retier(self) -> None:
        self.tier = tier_for(self.tasks_completed, self.results, self.consecutive_failures)
