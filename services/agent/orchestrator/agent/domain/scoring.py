"""How well one agent suits one task: the score of SPEC §2 with every term shown.

    total = weighted_sum · tier_multiplier
    weighted_sum = 0.25 · capability_fit + 0.30 · success_rate + 0.15 · (1 - utilisation)
                 + 0.15 · technology_match + 0.05 · session_type_preference
                 + 0.10 · complexity_alignment

Each term is 0..1:
    capability_fit           mean over the required capabilities of 1.0 when the agent holds it
                             as primary, 0.7 as secondary (primary wins if listed in both);
                             1.0 when the task requires none.
    success_rate             PerformanceMetrics.routing_success_rate (0.8 for a new agent).
    utilisation              current tasks / max concurrent tasks, capped at 1.
    technology_match         share of the task's technologies the agent prefers (compared
                             lower-case); 1.0 when the task names none, 0.0 when the agent
                             prefers none but the task names some.
    session_type_preference  1.0 when the task's session type is among the agent's preferred
                             ones, when the agent prefers none, or when the task gives none;
                             else 0.0.
    complexity_alignment     1 - |task rank - preferred rank| / 4 on TRIVIAL=1 … EXPERT=5, so
                             1.0 at the preferred complexity and 0.0 four steps away; 1.0 when
                             either side is unspecified.
    tier_multiplier          ELITE 1.1, ADVANCED 1.05, COMPETENT 1.0, TRAINEE 0.9, DEGRADED 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .kinds import Capability, SessionType, TaskComplexity
from .load import utilisation as _utilisation
from .performance import TIER_MULTIPLIERS, PerformanceTier
from .status import ROUTABLE_STATUSES, AgentStatus

W_CAPABILITY = 0.25
W_SUCCESS = 0.30
W_AVAILABILITY = 0.15
W_TECHNOLOGY = 0.15
W_SESSION_TYPE = 0.05
W_COMPLEXITY = 0.10

PRIMARY_FIT = 1.0
SECONDARY_FIT = 0.7
COMPLEXITY_SPAN = 4  # EXPERT - TRIVIAL

# Classes of refusal routing counts (a status that is not routable is named as itself).
MISSING_CAPABILITY = "missing a required capability"
EXCLUDED = "excluded"
DEGRADED = "degraded"
AT_CAPACITY = "at capacity"


@dataclass(frozen=True, slots=True)
class TaskNeeds:
    """What a task asks of its agent; technologies are lower-case, excluded are agent ids."""

    capabilities: frozenset[Capability] = frozenset()
    technologies: frozenset[str] = frozenset()
    session_type: SessionType | None = None
    complexity: TaskComplexity | None = None
    excluded: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """The routing view of one agent, derived from the aggregate whenever it changes.

    The fields after `max_tasks` are worked out once here rather than for every route.
    """

    agent_id: str
    name: str
    status: AgentStatus
    tier: PerformanceTier
    success_rate: float
    primary: frozenset[Capability]
    secondary: frozenset[Capability]
    technologies: frozenset[str]
    session_types: frozenset[SessionType]
    complexity: TaskComplexity | None
    max_tasks: int
    capabilities: frozenset[Capability] = field(init=False)
    weighted_success: float = field(init=False)
    multiplier: float = field(init=False)
    # Complexity alignment by the task's complexity rank (0 = unspecified).
    alignment: tuple[float, ...] = field(init=False)
    # Why its status or tier keeps it from any route, or None.
    standing: str | None = field(init=False)
    # The highest total it could reach with no technology match: the bound that lets routing
    # skip agents that cannot make the best few (see AgentDirectory.rank).
    ceiling: float = field(init=False)

    def __post_init__(self) -> None:
        multiplier = TIER_MULTIPLIERS[self.tier]
        weighted_success = W_SUCCESS * self.success_rate
        standing = None
        if self.status not in ROUTABLE_STATUSES:
            standing = self.status.value
        elif self.tier is PerformanceTier.DEGRADED:
            standing = DEGRADED
        derived: dict[str, object] = {
            "capabilities": self.primary | self.secondary,
            "weighted_success": weighted_success,
            "multiplier": multiplier,
            "alignment": (1.0, *(complexity_alignment(t, self.complexity) for t in TaskComplexity)),
            "standing": standing,
            "ceiling": multiplier * weighted_sum(1.0, weighted_success, 0.0, 0.0, 1.0, 1.0),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)


@dataclass(frozen=True, slots=True)
class RouteScore:
    capability_fit: float
    success_rate: float
    utilisation: float
    technology_match: float
    session_type_preference: float
    complexity_alignment: float
    weighted_sum: float
    tier_multiplier: float
    total: float


def capability_fit(
    required: frozenset[Capability],
    primary: frozenset[Capability],
    secondary: frozenset[Capability],
) -> float:
    if not required:
        return 1.0
    held_primary = len(required & primary)
    held_secondary = len((required & secondary) - primary)
    return (PRIMARY_FIT * held_primary + SECONDARY_FIT * held_secondary) / len(required)


def technology_match(task: frozenset[str], preferred: frozenset[str]) -> float:
    if not task:
        return 1.0
    return len(task & preferred) / len(task)


def session_type_preference(
    session_type: SessionType | None, preferred: frozenset[SessionType]
) -> float:
    if session_type is None or not preferred or session_type in preferred:
        return 1.0
    return 0.0


def complexity_alignment(task: TaskComplexity | None, preferred: TaskComplexity | None) -> float:
    if task is None or preferred is None:
        return 1.0
    return 1.0 - abs(task.rank - preferred.rank) / COMPLEXITY_SPAN


def weighted_sum(
    fit: float, weighted_success: float, used: float, tech: float, kind: float, size: float
) -> float:
    """The one place the weights meet; `weighted_success` is W_SUCCESS · success_rate."""
    return (
        W_CAPABILITY * fit
        + weighted_success
        + W_AVAILABILITY * (1.0 - used)
        + W_TECHNOLOGY * tech
        + W_SESSION_TYPE * kind
        + W_COMPLEXITY * size
    )


def score(agent: AgentProfile, current_tasks: int, needs: TaskNeeds) -> RouteScore:
    fit = capability_fit(needs.capabilities, agent.primary, agent.secondary)
    used = _utilisation(current_tasks, agent.max_tasks)
    tech = technology_match(needs.technologies, agent.technologies)
    kind = session_type_preference(needs.session_type, agent.session_types)
    size = complexity_alignment(needs.complexity, agent.complexity)
    weighted = weighted_sum(fit, agent.weighted_success, used, tech, kind, size)
    return RouteScore(
        capability_fit=fit,
        success_rate=agent.success_rate,
        utilisation=used,
        technology_match=tech,
        session_type_preference=kind,
        complexity_alignment=size,
        weighted_sum=weighted,
        tier_multiplier=agent.multiplier,
        total=weighted * agent.multiplier,
    )
