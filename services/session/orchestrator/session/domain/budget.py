"""Budgets: when a session's recorded usage has used up its token or cost budget.

A budget of zero is unlimited. A budget is exhausted once the usage reaches it (not only when it
passes it): the next task would spend beyond it. Tokens counted against `token_budget` are the
input, output and reasoning tokens; cache reads and writes are priced into `cost_usd`, so the cost
budget covers them.
"""

from __future__ import annotations

from dataclasses import replace

from .limits import SessionLimits
from .metrics import Usage
from .validation import validate_limits


def tokens_counted(usage: Usage) -> int:
    """The tokens a token budget is spent by."""
    return usage.input_tokens + usage.output_tokens + usage.reasoning_tokens


def budget_exhausted(limits: SessionLimits, usage: Usage) -> str:
    """Why `usage` leaves no room for new work under `limits`; "" while it does."""
    tokens = tokens_counted(usage)
    if limits.token_budget and tokens >= limits.token_budget:
        return f"token budget exhausted: {tokens:,} of {limits.token_budget:,} tokens"
    if limits.cost_budget_usd and usage.cost_usd >= limits.cost_budget_usd:
        return f"cost budget exhausted: ${usage.cost_usd:,.4f} of ${limits.cost_budget_usd:,.4f}"
    return ""


def with_budgets(
    limits: SessionLimits, token_budget: int | None, cost_budget_usd: float | None
) -> SessionLimits:
    """`limits` with the budgets given replaced (None keeps one as it is), validated."""
    changed = limits
    if token_budget is not None:
        changed = replace(changed, token_budget=token_budget)
    if cost_budget_usd is not None:
        changed = replace(changed, cost_budget_usd=cost_budget_usd)
    return validate_limits(changed)


def budget_change(before: SessionLimits, after: SessionLimits) -> str:
    """The budgets that changed, in words ("" when none did)."""
    parts = []
    if before.token_budget != after.token_budget:
        parts.append(f"token budget {_tokens(before.token_budget)} → {_tokens(after.token_budget)}")
    if before.cost_budget_usd != after.cost_budget_usd:
        parts.append(
            f"cost budget {_dollars(before.cost_budget_usd)} → {_dollars(after.cost_budget_usd)}"
        )
    return "; ".join(parts)


def _tokens(budget: int) -> str:
    return f"{budget:,}" if budget else "unlimited"


def _dollars(budget: float) -> str:
    return f"${budget:,.4f}" if budget else "unlimited"
