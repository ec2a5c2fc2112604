"""Domain values to proto numbers and back, and refusals of numbers the contract lacks."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

import pytest

from orchestrator.agent.domain import (
    Agent,
    AgentStatus,
    AgentType,
    Capability,
    ExecutorKind,
    LoadLevel,
    PerformanceTier,
    SessionType,
    TaskComplexity,
    TaskOutcome,
)
from orchestrator.agent.wire import (
    agent_to_proto,
    enum_from_proto,
    enum_list,
    enum_to_proto,
    required_enum,
)
from orchestrator.api.agent.v1 import agent_pb2 as pb
from orchestrator.common.errors import InvalidArgument

KINDS: list[type[StrEnum]] = [
    AgentStatus,
    AgentType,
    Capability,
    ExecutorKind,
    LoadLevel,
    PerformanceTier,
    SessionType,
    TaskComplexity,
    TaskOutcome,
]


@pytest.mark.parametrize("kind", KINDS)
def test_every_member_goes_to_its_number_and_back(kind: type[StrEnum]) -> None:
    for member in kind:
        number = enum_to_proto(member)
        assert number != 0
        assert enum_from_proto(kind, number, "f") is member


def test_members_equal_as_strings_keep_their_own_numbers(
    make_agent: Callable[..., Agent],
) -> None:
    # AgentStatus.IDLE and LoadLevel.IDLE are both "idle", with different numbers.
    out = agent_to_proto(make_agent("idle"))
    assert out.status == pb.AGENT_STATUS_IDLE and out.load.level == pb.LOAD_LEVEL_IDLE


def test_unknown_and_unspecified_numbers_are_refused_by_name() -> None:
    assert enum_from_proto(Capability, 0, "capabilities") is None
    with pytest.raises(InvalidArgument, match="99 is not a known capability") as err:
        enum_from_proto(Capability, 99, "capabilities")
    assert err.value.field == "capabilities"
    with pytest.raises(InvalidArgument, match="agent_type is required"):
        required_enum(AgentType, 0, "agent_type")
    with pytest.raises(InvalidArgument, match="CAPABILITY_UNSPECIFIED is not a capability"):
        enum_list(Capability, [5, 0], "primary_capabilities")
