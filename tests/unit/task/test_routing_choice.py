"""Placing a task from a cached ranking and this service's own count of each agent's leases."""

from __future__ import annotations

import pytest

from orchestrator.task.domain import Capability, TaskComplexity
from orchestrator.task.routing import (
    W_UTILISATION,
    AgentServiceRanker,
    Needs,
    NoEligibleAgent,
    RankedAgent,
    choose_agent,
    pick,
)


def _agent(name: str, idle_sum: float, slots: int = 4, multiplier: float = 1.0) -> RankedAgent:
    return RankedAgent(f"id-{name}", name, slots, idle_sum, multiplier)


def test_the_best_scoring_agent_with_a_free_slot_wins() -> None:
    a, b = _agent("A", 0.9), _agent("B", 0.8)
    assert pick([b, a], {}) is a
    assert pick([a, b], {"id-A": 4}) is b  # A is full
    assert pick([a, b], {"id-A": 4, "id-B": 4}) is None


def test_load_lowers_the_score_by_the_utilisation_term() -> None:
    a, b = _agent("A", 0.90), _agent("B", 0.88)
    # A at 2 of 4 slots: 0.90 - 0.15 * 0.5 = 0.825 < B idle at 0.88.
    assert a.score(2) == pytest.approx((0.90 - W_UTILISATION * 0.5) * 1.0)
    assert pick([a, b], {"id-A": 2}) is b
    assert pick([a, b], {"id-A": 0}) is a


def test_the_tier_multiplier_scales_the_whole_score() -> None:
    expert, novice = _agent("E", 0.8, multiplier=1.2), _agent("N", 0.8, multiplier=0.8)
    assert pick([novice, expert], {}) is expert
    assert expert.score(0) == pytest.approx(0.96)


def test_ties_go_to_the_less_loaded_then_by_name() -> None:
    # Equal scores at their loads: B (8 slots, 2 held) and A (4 slots, 1 held) both at 25%.
    a, b = _agent("A", 0.9, slots=4), _agent("B", 0.9, slots=8)
    assert pick([b, a], {"id-A": 1, "id-B": 2}) is a
    c = _agent("C", 0.9, slots=4)
    assert pick([c, a], {}) is a


def test_an_agent_without_slots_is_never_picked() -> None:
    assert pick([_agent("Z", 1.0, slots=0)], {}) is None


class _Ranker:
    """Rankings per needs, scripted; refusals are strings."""

    def __init__(self, answers: dict[Needs, list[RankedAgent] | str]) -> None:
        self.answers = answers
        self.asked: list[tuple[Needs, bool]] = []

    async def ranked(self, needs: Needs, *, fresh: bool = False) -> list[RankedAgent]:
        self.asked.append((needs, fresh))
        answer = self.answers[needs]
        if isinstance(answer, str):
            raise NoEligibleAgent(answer)
        return answer

    def forget(self) -> None:
        self.answers.clear()


async def test_agents_the_task_failed_on_are_passed_over_while_another_is_free() -> None:
    a, b = _agent("A", 0.9), _agent("B", 0.5)
    needs = Needs(excluded=("id-A",))
    ranker = _Ranker({needs: [b], needs.without_exclusions(): [a, b]})
    assert await choose_agent(ranker, needs, {}) == "id-B"
    # B full: back to A rather than waiting forever.
    assert await choose_agent(ranker, needs, {"id-B": 4}) == "id-A"
    # Only A fits at all: the exclusion is dropped.
    ranker.answers[needs] = "every eligible agent was excluded"
    assert await choose_agent(ranker, needs, {}) == "id-A"


async def test_no_fit_is_a_refusal_and_all_full_is_none() -> None:
    needs = Needs(capabilities=(Capability.SECURITY_AUDIT,))
    ranker = _Ranker({needs: "no agent holds SECURITY_AUDIT"})
    with pytest.raises(NoEligibleAgent, match="SECURITY_AUDIT"):
        await choose_agent(ranker, needs, {})
    ranker.answers[needs] = [_agent("A", 0.9, slots=1)]
    assert await choose_agent(ranker, needs, {"id-A": 1}) is None
    assert await choose_agent(ranker, needs, {}, fresh=True) == "id-A"
    assert ranker.asked[-1] == (needs, True)


def test_needs_read_from_a_stored_body() -> None:
    parsed = Needs.from_json("complex", '["code_generation"]', '["python"]', '["x"]')
    assert parsed == Needs(
        (Capability.CODE_GENERATION,), ("python",), TaskComplexity.COMPLEX, ("x",)
    )
    assert Needs.from_json("", "", "", "") == Needs()


async def test_the_ranking_cache_expires_and_can_be_dropped() -> None:
    now = [0.0]
    ranker = AgentServiceRanker.__new__(AgentServiceRanker)
    calls: list[Needs] = []

    async def ask(needs: Needs) -> list[RankedAgent] | str:
        calls.append(needs)
        return [_agent("A", 0.9)] if needs.capabilities else "no agent fits"

    ranker._ttl, ranker._clock, ranker._cache = 2.0, lambda: now[0], {}
    ranker._ask = ask  # type: ignore[method-assign]
    needs = Needs(capabilities=(Capability.TESTING,))
    await ranker.ranked(needs)
    await ranker.ranked(needs)
    assert len(calls) == 1
    now[0] = 2.5
    await ranker.ranked(needs)
    assert len(calls) == 2
    await ranker.ranked(needs, fresh=True)
    assert len(calls) == 3
    ranker.forget()
    await ranker.ranked(needs)
    assert len(calls) == 4
    # Refusals are cached too: an unroutable kind of work does not cost a call per tick.
    for _ in range(3):
        with pytest.raises(NoEligibleAgent):
            await ranker.ranked(Needs())
    assert len(calls) == 5
