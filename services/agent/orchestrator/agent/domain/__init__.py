"""The agent domain: the Agent aggregate, its status machine, track record, load and routing.

Pure Python: nothing here imports protobuf, gRPC, databases or message brokers.
"""

from .agent import Agent, RunResult
from .events import AgentEventType, DomainEvent
from .kinds import AgentType, Capability, ExecutorKind, SessionType, TaskComplexity, TaskOutcome
from .load import LoadLevel, load_level, utilisation
from .performance import (
    DEGRADED_AFTER_FAILURES,
    MIN_RESULTS,
    TIER_MULTIPLIERS,
    PerformanceMetrics,
    PerformanceTier,
    tier_for,
)
from .routing import Candidate, Ranking, no_fit_reason, order_key, rank, unfit_reason
from .scoring import AgentProfile, RouteScore, TaskNeeds, score
from .status import (
    LIVE_STATUSES,
    ROUTABLE_STATUSES,
    TRANSITIONS,
    AgentStatus,
    can_transition,
    ensure_transition,
)

__all__ = [
    "DEGRADED_AFTER_FAILURES",
    "LIVE_STATUSES",
    "MIN_RESULTS",
    "ROUTABLE_STATUSES",
    "TIER_MULTIPLIERS",
    "TRANSITIONS",
    "Agent",
    "AgentEventType",
    "AgentProfile",
    "AgentStatus",
    "AgentType",
    "Candidate",
    "Capability",
    "DomainEvent",
    "ExecutorKind",
    "LoadLevel",
    "PerformanceMetrics",
    "PerformanceTier",
    "Ranking",
    "RouteScore",
    "RunResult",
    "SessionType",
    "TaskComplexity",
    "TaskNeeds",
    "TaskOutcome",
    "can_transition",
    "ensure_transition",
    "load_level",
    "no_fit_reason",
    "order_key",
    "rank",
    "score",
    "tier_for",
    "unfit_reason",
    "utilisation",
]
