"""Domain events an agent records as it changes; the service writes them with the change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .status import AgentStatus


class AgentEventType(StrEnum):
    """`<aggregate>.<event>`, the `type` of the envelope on the event stream."""

    REGISTERED = "agent.registered"
    # REGISTERING or OFFLINE -> IDLE or BUSY on a heartbeat.
    ONLINE = "agent.online"
    BUSY = "agent.busy"
    IDLE = "agent.idle"
    DRAINING = "agent.draining"
    OFFLINE = "agent.offline"
    DEREGISTERED = "agent.deregistered"
    RESULT_RECORDED = "agent.result_recorded"
    # The set of current tasks changed. Load is not versioned (see Agent.report_load): this event
    # carries the agent's current version, which the previous event may carry as well.
    LOAD_CHANGED = "agent.load_changed"


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """One change to one agent. `version` is the agent's version after the change;
    `previous_status` is None when the status did not change."""

    type: AgentEventType
    agent_id: str
    version: int
    occurred_at: datetime
    status: AgentStatus
    previous_status: AgentStatus | None = None
    reason: str = ""
    actor: str = ""
