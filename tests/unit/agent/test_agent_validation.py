"""Bad registrations are refused with the field and the problem named, and build nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from orchestrator.agent.domain import Agent, AgentEventType, AgentStatus, Capability, ExecutorKind
from orchestrator.common.errors import InvalidArgument


def _create(t0: datetime, **overrides: Any) -> Agent:
    fields: dict[str, Any] = {
        "name": "AGENT-IMPL-01",
        "agent_type": "implementer",
        "primary_capabilities": ["code_generation"],
    }
    fields.update(overrides)
    return Agent.create(now=t0, **fields)


def test_a_valid_registration(t0: datetime) -> None:
    agent = _create(
        t0,
        secondary_capabilities=["testing", "testing"],
        preferred_technologies=[" Python ", "python", "PostgreSQL"],
        preferred_session_types=["execution"],
        complexity_preference="moderate",
        executor_kind="opencode",
        executor_endpoint="http://127.0.0.1:4096/",
        model_identifier="anthropic/claude-sonnet-4",
        metadata={"zone": "a"},
        registered_by="ops",
    )
    assert agent.status is AgentStatus.REGISTERING and agent.version == 1
    assert agent.secondary_capabilities == (Capability.TESTING,)
    assert agent.preferred_technologies == ("python", "postgresql")
    assert agent.executor_kind is ExecutorKind.OPENCODE
    assert agent.executor_endpoint == "http://127.0.0.1:4096"
    assert agent.max_concurrent_tasks == 1
    assert [e.type for e in agent.pull_events()] == [AgentEventType.REGISTERED]


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"name": "agent-impl"}, "name", "malformed"),
        ({"name": "AGENT-"}, "name", "malformed"),
        ({"name": "AGENT_IMPL"}, "name", "malformed"),
        ({"name": "IMPL-01"}, "name", "malformed"),
        ({"name": "AGENT-" + "X" * 60}, "name", "at most 64"),
        ({"agent_type": "wizard"}, "agent_type", "'wizard' is not one of"),
        ({"primary_capabilities": []}, "primary_capabilities", "at least one"),
        ({"primary_capabilities": ["juggling"]}, "primary_capabilities", "'juggling'"),
        ({"secondary_capabilities": ["code_generation"]}, "secondary_capabilities", "CODE_GEN"),
        ({"preferred_technologies": [""]}, "preferred_technologies", "1 to 64"),
        ({"preferred_session_types": ["party"]}, "preferred_session_types", "'party'"),
        ({"complexity_preference": "huge"}, "complexity_preference", "'huge'"),
        ({"executor_kind": "opencode"}, "executor_endpoint", "http(s) URL"),
        (
            {"executor_kind": "opencode", "executor_endpoint": "ftp://x"},
            "executor_endpoint",
            "http(s) URL",
        ),
        ({"executor_endpoint": "http://x"}, "executor_endpoint", "empty for a SHELL"),
        ({"model_identifier": "no-slash"}, "model_identifier", "provider/model"),
        ({"max_concurrent_tasks": -1}, "max_concurrent_tasks", "1 to 1000"),
        ({"max_concurrent_tasks": 1001}, "max_concurrent_tasks", "1 to 1000"),
        ({"metadata": {"x": float("inf")}}, "metadata", "NaN or infinity"),
        ({"agent_id": "not-a-uuid"}, "agent_id", "not a UUID"),
    ],
)
def test_bad_registrations_name_the_field(
    t0: datetime, overrides: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        _create(t0, **overrides)
    assert err.value.field == field
    assert says in err.value.message


def test_same_registration_compares_the_body(t0: datetime) -> None:
    ident = "7b0c8f0e-7d0a-4f55-9b8e-0d0c7b0c8f0e"
    first = _create(t0, agent_id=ident)
    assert first.same_registration(_create(t0, agent_id=ident))
    assert not first.same_registration(_create(t0, agent_id=ident, max_concurrent_tasks=2))
