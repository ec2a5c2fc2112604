"""What runs of a task produce and cost: usage, workspace changes, reviews, and the timing
rules of leases and retries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from orchestrator.common.errors import InvalidArgument

DEFAULT_LEASE_SECONDS = 300
MAX_LEASE_SECONDS = 3_600
BACKOFF_BASE_SECONDS = 10
BACKOFF_CAP_SECONDS = 900


@dataclass(frozen=True, slots=True)
class Usage:
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

    def validated(self) -> Usage:
        for name in (
            "input_tokens",
            "output_tokens",
            "reasoning_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
        ):
            if getattr(self, name) < 0:
                raise InvalidArgument(f"usage.{name} must not be negative", field=f"usage.{name}")
        if not self.cost_usd >= 0 or self.cost_usd == float("inf"):
            raise InvalidArgument("usage.cost_usd must be a finite amount >= 0", field="usage")
        return self


@dataclass(frozen=True, slots=True)
class WorkspaceChanges:
    branch: str = ""
    base_commit: str = ""
    head_commit: str = ""
    diff: str = ""
    changed_files: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Review:
    approved: bool
    reviewer: str
    comment: str
    at: datetime


def lease_duration(seconds: int) -> timedelta:
    """0 means the default; a lease is 1 s to MAX_LEASE_SECONDS (renew for longer work)."""
    if seconds == 0:
        return timedelta(seconds=DEFAULT_LEASE_SECONDS)
    if not 1 <= seconds <= MAX_LEASE_SECONDS:
        raise InvalidArgument(
            f"lease_seconds must be 1 to {MAX_LEASE_SECONDS} (or 0 for "
            f"{DEFAULT_LEASE_SECONDS}); got {seconds}",
            field="lease_seconds",
        )
    return timedelta(seconds=seconds)


def retry_backoff(attempts_used: int) -> timedelta:
    """10 s after the first failure, doubling each time, at most 15 minutes."""
    exponent = max(0, attempts_used - 1)
    seconds = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** min(exponent, 20))
    return timedelta(seconds=seconds)
