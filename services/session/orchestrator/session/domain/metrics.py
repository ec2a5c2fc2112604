"""What a session has consumed and how its current attempt went."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens and cost reported by the model runs of a session's tasks."""

    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
        )


@dataclass(slots=True)
class SessionMetrics:
    """Timestamps describe the current attempt: a retry clears them so the next run gets its
    full `max_duration_seconds`. Counters and usage accumulate over every attempt."""

    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_seconds: float = 0.0
    retry_count: int = 0
    checkpoint_count: int = 0
    usage: Usage = field(default_factory=Usage)
    tasks_total: int = 0
    tasks_completed: int = 0
    tasks_failed: int = 0
    tasks_skipped: int = 0

    def begin_attempt(self, moment: datetime) -> None:
        self.started_at = moment
        self.completed_at = None
        self.duration_seconds = 0.0

    def end_attempt(self, moment: datetime) -> None:
        self.completed_at = moment
        if self.started_at is not None:
            self.duration_seconds = max(0.0, (moment - self.started_at).total_seconds())

    def clear_attempt(self) -> None:
        self.started_at = None
        self.completed_at = None
        self.duration_seconds = 0.0
