"""What a session may spend: parallelism, tokens, money and retries."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_RETRIES = 3


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """Zero means unlimited for the budgets; for `max_retries` zero means no retry at all."""

    max_parallel_tasks: int = 0
    token_budget: int = 0
    cost_budget_usd: float = 0.0
    max_retries: int = DEFAULT_MAX_RETRIES
