"""Routing scores against a table computed by hand from SPEC §2, then ranking and refusals.

Weights: fit 0.25, success 0.30, (1 - utilisation) 0.15, technology 0.15, session type 0.05,
complexity 0.10; times ELITE 1.1, ADVANCED 1.05, COMPETENT 1.0, TRAINEE 0.9, DEGRADED 0.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from orchestrator.agent.domain import (
    AgentProfile,
    AgentStatus,
    Capability,
    PerformanceTier,
    Ranking,
    SessionType,
    TaskComplexity,
    TaskNeeds,
    no_fit_reason,
    order_key,
    rank,
    score,
    unfit_reason,
)

from .conftest import profile

C = Capability
T = PerformanceTier
CODE = frozenset({C.CODE_GENERATION})


def ranked(pool: list[tuple[AgentProfile, int]], task: TaskNeeds, limit: int = 0) -> Ranking:
    """`rank` over (profile, current tasks) pairs."""
    return rank([p for p, _ in pool], {p.agent_id: n for p, n in pool}, task, limit)


def needs(**fields: Any) -> TaskNeeds:
    fields.setdefault("capabilities", CODE)
    return TaskNeeds(**fields)


# (case, agent profile fields, current tasks, task needs, expected sub-scores, expected total)
# Sub-scores: fit, success, utilisation, technology, session type, complexity, multiplier.
TABLE: list[tuple[str, dict[str, Any], int, TaskNeeds, tuple[float, ...], float]] = [
    # 0.25 + 0.24 + 0.15 + 0.15 + 0.05 + 0.10
    ("baseline, primary fit", {}, 0, needs(), (1, 0.8, 0, 1, 1, 1, 1), 0.94),
    # 0.175 + 0.24 + 0.15 + 0.15 + 0.05 + 0.10
    (
        "secondary fit",
        {"primary": (C.TESTING,), "secondary": (C.CODE_GENERATION,)},
        0,
        needs(),
        (0.7, 0.8, 0, 1, 1, 1, 1),
        0.865,
    ),
    # fit (1.0 + 0.7) / 2 = 0.85 -> 0.2125
    (
        "mean fit over two capabilities",
        {"secondary": (C.TESTING,)},
        0,
        needs(capabilities=frozenset({C.CODE_GENERATION, C.TESTING})),
        (0.85, 0.8, 0, 1, 1, 1, 1),
        0.9025,
    ),
    # utilisation 1/4 -> 0.15 * 0.75 = 0.1125
    ("quarter used", {"max_tasks": 4}, 1, needs(), (1, 0.8, 0.25, 1, 1, 1, 1), 0.9025),
    # technology 1/3 -> 0.05
    (
        "one of three technologies",
        {"technologies": ("python", "go")},
        0,
        needs(technologies=frozenset({"python", "postgres", "redis"})),
        (1, 0.8, 0, 1 / 3, 1, 1, 1),
        0.84,
    ),
    (
        "task names technologies, agent prefers none",
        {},
        0,
        needs(technologies=frozenset({"python"})),
        (1, 0.8, 0, 0, 1, 1, 1),
        0.79,
    ),
    (
        "session type not preferred",
        {"session_types": (SessionType.EXECUTION,)},
        0,
        needs(session_type=SessionType.REVIEW),
        (1, 0.8, 0, 1, 0, 1, 1),
        0.89,
    ),
    (
        "session type preferred",
        {"session_types": (SessionType.EXECUTION, SessionType.REVIEW)},
        0,
        needs(session_type=SessionType.REVIEW),
        (1, 0.8, 0, 1, 1, 1, 1),
        0.94,
    ),
    # EXPERT (5) vs SIMPLE (2): 1 - 3/4 = 0.25 -> 0.025
    (
        "complexity three steps away",
        {"complexity": TaskComplexity.SIMPLE},
        0,
        needs(complexity=TaskComplexity.EXPERT),
        (1, 0.8, 0, 1, 1, 0.25, 1),
        0.865,
    ),
    (
        "task without complexity",
        {"complexity": TaskComplexity.SIMPLE},
        0,
        needs(),
        (1, 0.8, 0, 1, 1, 1, 1),
        0.94,
    ),
    # 1.0 * 1.1
    ("elite", {"tier": T.ELITE, "success": 1.0}, 0, needs(), (1, 1, 0, 1, 1, 1, 1.1), 1.1),
    # (0.25 + 0.27 + 0.55) = 0.97 * 1.05
    (
        "advanced",
        {"tier": T.ADVANCED, "success": 0.9},
        0,
        needs(),
        (1, 0.9, 0, 1, 1, 1, 1.05),
        1.0185,
    ),
    # (0.25 + 0.15 + 0.45) = 0.85 * 0.9
    ("trainee", {"tier": T.TRAINEE, "success": 0.5}, 0, needs(), (1, 0.5, 0, 1, 1, 1, 0.9), 0.765),
    ("degraded", {"tier": T.DEGRADED, "success": 0.0}, 0, needs(), (1, 0, 0, 1, 1, 1, 0), 0.0),
    # fit (1 + 0.7 + 0.7) / 3 = 0.8 -> 0.2; success 0.6 -> 0.18; utilisation 2/5 -> 0.09;
    # technology 1/2 -> 0.075; session type 0.05; MODERATE vs COMPLEX 0.75 -> 0.075;
    # sum 0.67 * 0.9
    (
        "everything at once",
        {
            "secondary": (C.SECURITY_AUDIT, C.TESTING),
            "technologies": ("python",),
            "session_types": (SessionType.DEBUG, SessionType.REVIEW),
            "complexity": TaskComplexity.COMPLEX,
            "tier": T.TRAINEE,
            "success": 0.6,
            "max_tasks": 5,
        },
        2,
        needs(
            capabilities=frozenset({C.CODE_GENERATION, C.SECURITY_AUDIT, C.TESTING}),
            technologies=frozenset({"python", "rust"}),
            session_type=SessionType.DEBUG,
            complexity=TaskComplexity.MODERATE,
        ),
        (0.8, 0.6, 0.4, 0.5, 1, 0.75, 0.9),
        0.603,
    ),
    # No capability required: every agent fits fully.
    (
        "no capability required",
        {},
        0,
        needs(capabilities=frozenset()),
        (1, 0.8, 0, 1, 1, 1, 1),
        0.94,
    ),
]


@pytest.mark.parametrize(
    ("fields", "current", "task", "parts", "total"),
    [case[1:] for case in TABLE],
    ids=[case[0] for case in TABLE],
)
def test_score_matches_the_hand_computed_table(
    fields: dict[str, Any],
    current: int,
    task: TaskNeeds,
    parts: tuple[float, ...],
    total: float,
) -> None:
    s = score(profile(**fields), current, task)
    got = (
        s.capability_fit,
        s.success_rate,
        s.utilisation,
        s.technology_match,
        s.session_type_preference,
        s.complexity_alignment,
        s.tier_multiplier,
    )
    assert got == pytest.approx(parts)
    assert s.total == pytest.approx(total)
    assert s.total == pytest.approx(s.weighted_sum * s.tier_multiplier)


def test_equal_scores_go_to_the_name_first_in_order() -> None:
    pool = [(profile("AGENT-C"), 0), (profile("AGENT-A"), 0), (profile("AGENT-B"), 0)]
    ranking = ranked(pool, needs())
    assert [c.agent.name for c in ranking.candidates] == ["AGENT-A", "AGENT-B", "AGENT-C"]
    assert len({round(c.score.total, 9) for c in ranking.candidates}) == 1


def test_equal_scores_go_to_the_less_used_agent_before_the_name() -> None:
    # A: success 1.0, half used -> 0.25 + 0.30 + 0.075 + 0.30 = 0.925
    # B: success 0.75, unused   -> 0.25 + 0.225 + 0.15 + 0.30 = 0.925
    busy = profile("AGENT-A", success=1.0, max_tasks=2)
    free = profile("AGENT-B", success=0.75, max_tasks=2)
    ranking = ranked([(busy, 1), (free, 0)], needs())
    totals = [c.score.total for c in ranking.candidates]
    assert totals == pytest.approx([0.925, 0.925])
    assert [c.agent.name for c in ranking.candidates] == ["AGENT-B", "AGENT-A"]


def test_the_tier_multiplier_decides_between_otherwise_equal_agents() -> None:
    pool = [
        (profile("AGENT-A", tier=T.TRAINEE), 0),
        (profile("AGENT-B", tier=T.COMPETENT), 0),
        (profile("AGENT-C", tier=T.ADVANCED), 0),
        (profile("AGENT-D", tier=T.ELITE), 0),
    ]
    ranking = ranked(pool, needs())
    assert [c.agent.name for c in ranking.candidates] == [
        "AGENT-D",
        "AGENT-C",
        "AGENT-B",
        "AGENT-A",
    ]


def test_a_primary_holder_beats_a_better_secondary_holder_only_by_the_numbers() -> None:
    # Primary, success 0.8: 0.94. Secondary, success 1.0: 0.175 + 0.30 + 0.45 = 0.925.
    primary = profile("AGENT-Z")
    secondary = profile(
        "AGENT-A", primary=(C.TESTING,), secondary=(C.CODE_GENERATION,), success=1.0
    )
    ranking = ranked([(secondary, 0), (primary, 0)], needs())
    assert [c.agent.name for c in ranking.candidates] == ["AGENT-Z", "AGENT-A"]


def test_limit_keeps_the_best_in_order() -> None:
    pool = [(profile(f"AGENT-{i}", success=i / 10), 0) for i in range(10)]
    ranking = ranked(pool, needs(), limit=3)
    assert [c.agent.name for c in ranking.candidates] == ["AGENT-9", "AGENT-8", "AGENT-7"]


@pytest.mark.parametrize(
    ("fields", "current", "task", "reason"),
    [
        ({"primary": (C.TESTING,)}, 0, needs(), "missing a required capability"),
        ({"agent_id": "x"}, 0, needs(excluded=frozenset({"x"})), "excluded"),
        ({"status": AgentStatus.DRAINING}, 0, needs(), "draining"),
        ({"status": AgentStatus.OFFLINE}, 0, needs(), "offline"),
        ({"status": AgentStatus.REGISTERING}, 0, needs(), "registering"),
        ({"tier": T.DEGRADED}, 0, needs(), "degraded"),
        ({"max_tasks": 2}, 2, needs(), "at capacity"),
        ({"max_tasks": 2}, 3, needs(), "at capacity"),
        ({"status": AgentStatus.BUSY, "max_tasks": 2}, 1, needs(), None),
        ({"status": AgentStatus.IDLE}, 0, needs(), None),
    ],
)
def test_eligibility(
    fields: dict[str, Any], current: int, task: TaskNeeds, reason: str | None
) -> None:
    assert unfit_reason(profile(**fields), current, task) == reason


def test_refusals_are_counted_by_class() -> None:
    pool = [
        (profile("AGENT-A", max_tasks=1), 1),
        (profile("AGENT-B", max_tasks=1), 1),
        (profile("AGENT-C", status=AgentStatus.DRAINING), 0),
        (profile("AGENT-D", tier=T.DEGRADED), 0),
    ]
    ranking = ranked(pool, needs())
    assert ranking.candidates == []
    assert ranking.refused == Counter({"at capacity": 2, "draining": 1, "degraded": 1})
    message = no_fit_reason(needs(), {C.CODE_GENERATION: 4}, ranking.refused)
    assert message == (
        "no eligible agent for CODE_GENERATION: 2 at capacity, 1 degraded, 1 draining "
        "(4 agents hold CODE_GENERATION)"
    )


def test_no_fit_names_a_capability_nobody_holds() -> None:
    task = needs(capabilities=frozenset({C.SECURITY_AUDIT, C.CODE_GENERATION}))
    message = no_fit_reason(task, {C.CODE_GENERATION: 3}, Counter())
    assert message == "no agent holds SECURITY_AUDIT"


def test_no_fit_says_when_nobody_holds_the_combination() -> None:
    task = needs(capabilities=frozenset({C.SECURITY_AUDIT, C.CODE_GENERATION}))
    message = no_fit_reason(task, {C.CODE_GENERATION: 3, C.SECURITY_AUDIT: 1}, Counter())
    assert message == "no agent holds all of CODE_GENERATION, SECURITY_AUDIT together"


def test_no_fit_with_a_single_excluded_agent() -> None:
    message = no_fit_reason(needs(), {C.CODE_GENERATION: 1}, Counter({"excluded": 1}))
    assert (
        message
        == "no eligible agent for CODE_GENERATION: 1 excluded (1 agent holds CODE_GENERATION)"
    )


def test_the_ranking_loop_agrees_with_score_and_unfit_reason() -> None:
    """`rank` writes the formula out for speed; on random fleets it must order and refuse
    exactly as `score` and `unfit_reason` say."""
    rng = random.Random(7)
    caps, techs = list(Capability), ["python", "go", "rust", "sql", "react"]
    for _ in range(50):
        pool = []
        for n in range(40):
            held = rng.sample(caps, 4)
            agent = profile(
                f"AGENT-{n:02d}",
                primary=tuple(held[:2]),
                secondary=tuple(held[2:]),
                technologies=tuple(rng.sample(techs, rng.randint(0, 2))),
                session_types=tuple(rng.sample(list(SessionType), rng.randint(0, 2))),
                complexity=rng.choice([None, *TaskComplexity]),
                tier=rng.choice(list(T)),
                success=rng.choice([0.8, 0.9, 1.0, 1 / 3]),
                max_tasks=rng.randint(1, 3),
                status=rng.choice([AgentStatus.IDLE, AgentStatus.BUSY, AgentStatus.OFFLINE]),
            )
            pool.append((agent, rng.randint(0, 3)))
        task = TaskNeeds(
            capabilities=frozenset(rng.sample(caps, rng.randint(0, 1))),
            technologies=frozenset(rng.sample(techs, rng.randint(0, 2))),
            session_type=rng.choice([None, *SessionType]),
            complexity=rng.choice([None, *TaskComplexity]),
            excluded=frozenset({pool[0][0].agent_id}),
        )
        ranking = ranked(pool, task)
        reasons = Counter(r for a, n in pool if (r := unfit_reason(a, n, task)) is not None)
        assert ranking.refused == reasons
        assert len(ranking.candidates) == len(pool) - sum(reasons.values())
        assert ranking.candidates == sorted(ranking.candidates, key=order_key)
        for c in ranking.candidates:
            assert c.score == score(c.agent, c.current_tasks, task)
