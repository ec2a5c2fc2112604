"""Builders for contexts; a stored context is rebuilt the same way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator.context.domain import Context, ContextScope

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SESSION_ID = "5b0f7c1e-3f55-4b8e-9a43-0c8e8e4b9d10"


@pytest.fixture
def t0() -> datetime:
    return T0


@pytest.fixture
def make_context() -> Callable[..., Context]:
    def make(data: dict[str, Any] | None = None, **fields: Any) -> Context:
        fields.setdefault("scope", ContextScope.SESSION)
        if fields["scope"] is ContextScope.SESSION:
            fields.setdefault("owner_id", SESSION_ID)
        fields.setdefault("now", T0)
        context = Context.create(data=data, **fields)
        context.pull_events()
        return context

    return make
