"""Which agents may take a task, which one wins, and why nobody does when nobody can.

Eligible: holds every required capability (primary or secondary), is not excluded, is IDLE or
BUSY, is not DEGRADED, and has a free slot (current tasks < max concurrent tasks).

Order: the highest total first; equal totals (compared to 9 decimals, so float noise cannot
decide) go to the lower utilisation, then to the name, then to the id, so equal inputs always
route the same way.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .kinds import Capability
from .scoring import (
    AT_CAPACITY,
    DEGRADED,
    EXCLUDED,
    MISSING_CAPABILITY,
    PRIMARY_FIT,
    SECONDARY_FIT,
    AgentProfile,
    RouteScore,
    TaskNeeds,
    score,
    weighted_sum,
)

# Refusal classes in the order messages list them; statuses use their own names.
_REASON_ORDER = (AT_CAPACITY, DEGRADED, "draining", "offline", "registering", EXCLUDED)


def unfit_reason(agent: AgentProfile, current_tasks: int, needs: TaskNeeds) -> str | None:
    """None when `agent` may take the task; otherwise the class of refusal."""
    if not needs.capabilities <= agent.capabilities:
        return MISSING_CAPABILITY
    if agent.agent_id in needs.excluded:
        return EXCLUDED
    return agent.standing or (AT_CAPACITY if current_tasks >= agent.max_tasks else None)


@dataclass(frozen=True, slots=True)
class Candidate:
    agent: AgentProfile
    current_tasks: int
    score: RouteScore


@dataclass(frozen=True)
class Ranking:
    """The best `limit` eligible agents, best first, and how many of the agents examined were
    refused for what (all of them whenever `candidates` is empty)."""

    candidates: list[Candidate]
    refused: Counter[str] = field(default_factory=Counter)


def order_key(c: Candidate) -> tuple[float, float, str, str]:
    return (-round(c.score.total, 9), c.score.utilisation, c.agent.name, c.agent.agent_id)


_Keyed = tuple[float, float, str, str, AgentProfile, int]


def rank(
    agents: Iterable[AgentProfile], loads: Mapping[str, int], needs: TaskNeeds, limit: int = 0
) -> Ranking:
    """Scores the eligible `agents` (current task counts in `loads`, absent = none); `limit`
    0 keeps all. This loop runs over thousands of agents per route: it is `unfit_reason` and
    `score` written out with the task's part worked out once, computing only each total; the
    breakdown is built for the agents returned. Tests hold the two to the same numbers.
    """
    refused: Counter[str] = Counter()
    keyed: list[_Keyed] = []
    required, excluded = needs.capabilities, needs.excluded
    count = len(required)
    techs, session = needs.technologies, needs.session_type
    size_at = needs.complexity.rank if needs.complexity else 0
    load_of = loads.get
    for agent in agents:
        current = load_of(agent.agent_id, 0)
        reason = (
            MISSING_CAPABILITY
            if not required <= agent.capabilities
            else EXCLUDED
            if agent.agent_id in excluded
            else agent.standing or (AT_CAPACITY if current >= agent.max_tasks else None)
        )
        if reason is not None:
            refused[reason] += 1
            continue
        used = current / agent.max_tasks  # below 1 here, as `utilisation` caps it
        held = len(required & agent.primary)
        fit = (PRIMARY_FIT * held + SECONDARY_FIT * (count - held)) / count if count else 1.0
        tech = len(techs & agent.technologies) / len(techs) if techs else 1.0
        preferred = agent.session_types
        kind = 1.0 if session is None or not preferred or session in preferred else 0.0
        size = agent.alignment[size_at]
        total = weighted_sum(fit, agent.weighted_success, used, tech, kind, size) * agent.multiplier
        keyed.append((-round(total, 9), used, agent.name, agent.agent_id, agent, current))
    best = heapq.nsmallest(limit, keyed) if 0 < limit < len(keyed) else sorted(keyed)
    candidates = [Candidate(a, c, score(a, c, needs)) for *_, a, c in best]
    return Ranking(candidates, refused)


def no_fit_reason(
    needs: TaskNeeds, holders: Mapping[Capability, int], refused: Counter[str]
) -> str:
    """Why no agent is eligible, most fundamental cause first.

    `holders` counts, per required capability, the agents holding it; `refused` counts the
    agents holding all of them by refusal class (see `unfit_reason`).
    """
    wanted = _names(needs.capabilities)
    missing = sorted(c.name for c in needs.capabilities if not holders.get(c))
    if missing:
        return f"no agent holds {' or '.join(missing)}"
    considered = sum(n for reason, n in refused.items() if reason != MISSING_CAPABILITY)
    if not considered:
        if len(needs.capabilities) > 1:
            return f"no agent holds all of {wanted} together"
        return "no agent is registered"
    parts = [f"{refused[r]} {r}" for r in _REASON_ORDER if refused.get(r)]
    parts += [f"{n} {r}" for r, n in sorted(refused.items()) if r not in _REASON_ORDER]
    parts = [p for p in parts if not p.endswith(MISSING_CAPABILITY)]
    holding = f" ({_agents(considered)} {wanted})" if needs.capabilities else ""
    subject = f" for {wanted}" if needs.capabilities else ""
    return f"no eligible agent{subject}: {', '.join(parts)}{holding}"


def _agents(count: int) -> str:
    return "1 agent holds" if count == 1 else f"{count} agents hold"


def _names(capabilities: Iterable[Capability]) -> str:
    return ", ".join(sorted(c.name for c in capabilities))
