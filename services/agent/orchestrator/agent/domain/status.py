"""The agent status machine: six states and the moves the agent contract allows between them."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from orchestrator.common.errors import FailedPrecondition


class AgentStatus(StrEnum):
    """Values are the proto names without the `AGENT_STATUS_` prefix, lower-cased."""

    REGISTERING = "registering"
    IDLE = "idle"
    BUSY = "busy"
    DRAINING = "draining"
    OFFLINE = "offline"
    DEREGISTERED = "deregistered"


_S = AgentStatus

# - a heartbeat brings REGISTERING and OFFLINE agents to IDLE or BUSY, and moves IDLE <-> BUSY;
# - drain applies to IDLE, BUSY and OFFLINE agents (a REGISTERING one is deregistered instead);
# - a missed heartbeat TTL takes any live agent OFFLINE;
# - deregistration is possible from everywhere but DEREGISTERED itself, and is final.
TRANSITIONS: dict[AgentStatus, tuple[AgentStatus, ...]] = {
    _S.REGISTERING: (_S.IDLE, _S.BUSY, _S.OFFLINE, _S.DEREGISTERED),
    _S.IDLE: (_S.BUSY, _S.DRAINING, _S.OFFLINE, _S.DEREGISTERED),
    _S.BUSY: (_S.IDLE, _S.DRAINING, _S.OFFLINE, _S.DEREGISTERED),
    _S.DRAINING: (_S.OFFLINE, _S.DEREGISTERED),
    _S.OFFLINE: (_S.IDLE, _S.BUSY, _S.DRAINING, _S.DEREGISTERED),
    _S.DEREGISTERED: (),
}

ROUTABLE_STATUSES: frozenset[AgentStatus] = frozenset({_S.IDLE, _S.BUSY})
"""Only these may be routed new tasks (capacity and tier permitting)."""

LIVE_STATUSES: frozenset[AgentStatus] = frozenset({_S.REGISTERING, _S.IDLE, _S.BUSY, _S.DRAINING})
"""Expected to heart-beat: the offline sweeper watches these."""


def can_transition(current: AgentStatus, target: AgentStatus) -> bool:
    return target in TRANSITIONS[current]


def ensure_transition(agent_id: str, current: AgentStatus, target: AgentStatus) -> None:
    """Raises FailedPrecondition naming both states and what `current` does allow."""
    if can_transition(current, target):
        return
    raise FailedPrecondition(
        f"agent {agent_id} is {current}; it cannot go to {target} "
        f"(allowed from {current}: {_names(TRANSITIONS[current])})"
    )


def _names(statuses: Iterable[AgentStatus]) -> str:
    return ", ".join(statuses) or "none"
