"""Builders for agents and routing profiles in any state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator.agent.domain import (
    Agent,
    AgentProfile,
    AgentStatus,
    Capability,
    PerformanceTier,
    SessionType,
    TaskComplexity,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ID_PREFIX = "00000000-0000-4000-8000-"


@pytest.fixture
def t0() -> datetime:
    return T0


@pytest.fixture
def make_agent() -> Callable[..., Agent]:
    def make(
        status: AgentStatus | str = "registering", tasks: tuple[str, ...] = (), **fields: Any
    ) -> Agent:
        fields.setdefault("name", "AGENT-IMPL-01")
        fields.setdefault("agent_type", "implementer")
        fields.setdefault("primary_capabilities", ["code_generation"])
        agent = Agent.create(now=T0, **fields)
        agent.status = AgentStatus(status)
        agent.report_load(T0, tasks)
        agent.pull_events()
        return agent

    return make


def profile(
    name: str = "AGENT-A",
    *,
    primary: tuple[Capability, ...] = (Capability.CODE_GENERATION,),
    secondary: tuple[Capability, ...] = (),
    technologies: tuple[str, ...] = (),
    session_types: tuple[SessionType, ...] = (),
    complexity: TaskComplexity | None = None,
    tier: PerformanceTier = PerformanceTier.COMPETENT,
    success: float = 0.8,
    max_tasks: int = 1,
    status: AgentStatus = AgentStatus.IDLE,
    agent_id: str = "",
) -> AgentProfile:
    return AgentProfile(
        agent_id=agent_id or ID_PREFIX + name.encode().hex()[-12:].rjust(12, "0"),
        name=name,
        status=status,
        tier=tier,
        success_rate=success,
        primary=frozenset(primary),
        secondary=frozenset(secondary),
        technologies=frozenset(technologies),
        session_types=frozenset(session_types),
        complexity=complexity,
        max_tasks=max_tasks,
    )
