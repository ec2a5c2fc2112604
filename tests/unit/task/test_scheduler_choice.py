"""Which READY leaves a scheduler tick assigns: order and the per-session and global limits."""

from __future__ import annotations

from orchestrator.task.choreography.scheduler import Candidate, choose

NORMAL, HIGH, BLOCKER = 4, 3, 1


def _c(task: str, session: str = "s1", *, limit: int = 0, urgency: int = NORMAL,
       rank: float = 1.0, order: int = 0) -> Candidate:  # fmt: skip
    return Candidate(task, session, limit, urgency, rank, order)


def _ids(chosen: list[Candidate]) -> list[str]:
    return [c.task_id for c in chosen]


def test_priority_then_critical_path_then_creation_order() -> None:
    candidates = [
        _c("late-short", rank=1.0, order=3),
        _c("early-short", rank=1.0, order=1),
        _c("long-chain", rank=9.0, order=2),
        _c("urgent", urgency=HIGH, rank=0.5, order=4),
        _c("blocker", urgency=BLOCKER, rank=0.1, order=5),
    ]
    assert _ids(choose(candidates, {}, None)) == [
        "blocker",
        "urgent",
        "long-chain",
        "early-short",
        "late-short",
    ]


def test_a_session_never_runs_past_its_limit() -> None:
    candidates = [_c(f"a{i}", "a", limit=2, order=i) for i in range(4)]
    candidates += [_c(f"b{i}", "b", order=10 + i) for i in range(2)]
    # Session a already runs one task: one more fits; session b has no limit.
    assert _ids(choose(candidates, {"a": 1}, None)) == ["a0", "b0", "b1"]


def test_the_global_limit_counts_every_session() -> None:
    candidates = [_c(f"a{i}", "a", order=i) for i in range(3)]
    candidates += [_c("b0", "b", urgency=HIGH, order=9)]
    assert _ids(choose(candidates, {}, 2)) == ["b0", "a0"]
    assert choose(candidates, {}, 0) == []


def test_a_budget_is_spent_when_tokens_or_cost_reach_it() -> None:
    from orchestrator.task.choreography.scheduler import budget_spent

    assert not budget_spent(999, 0.0, 1000, 0.0)
    assert budget_spent(1000, 0.0, 1000, 0.0)
    assert budget_spent(0, 0.5, 0, 0.5) and not budget_spent(0, 0.49, 0, 0.5)
    # 0 is no budget at all, however much was spent.
    assert not budget_spent(10**9, 1e9, 0, 0.0)
