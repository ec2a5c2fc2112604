"""Track record, tiers and the success rate routing uses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from orchestrator.agent.domain import (
    Agent,
    AgentEventType,
    PerformanceMetrics,
    PerformanceTier,
    RunResult,
    TaskOutcome,
    tier_for,
)
from orchestrator.common.errors import InvalidArgument

MakeAgent = Callable[..., Agent]
T = PerformanceTier
R = TaskOutcome


@pytest.mark.parametrize(
    ("completed", "results", "failures_in_a_row", "tier"),
    [
        (0, 0, 0, T.COMPETENT),  # no history
        (4, 4, 0, T.COMPETENT),  # too few results to judge
        (0, 4, 2, T.COMPETENT),
        (20, 20, 0, T.ELITE),
        (96, 100, 0, T.ELITE),  # 0.96 > 0.95
        (95, 100, 0, T.ADVANCED),  # 0.95 is not above 0.95
        (85, 100, 0, T.ADVANCED),
        (84, 100, 0, T.COMPETENT),
        (70, 100, 0, T.COMPETENT),
        (69, 100, 0, T.TRAINEE),
        (0, 5, 2, T.TRAINEE),
        (97, 100, 3, T.DEGRADED),  # three failures in a row, whatever the rate
        (0, 3, 3, T.DEGRADED),  # even before enough results
    ],
)
def test_tier_for(completed: int, results: int, failures_in_a_row: int, tier: T) -> None:
    assert tier_for(completed, results, failures_in_a_row) is tier


def _metrics(*outcomes: TaskOutcome, at: datetime) -> PerformanceMetrics:
    m = PerformanceMetrics()
    for outcome in outcomes:
        m.record(outcome, 10.0, None, at)
    return m


@pytest.mark.parametrize(
    ("outcomes", "rate"),
    [
        ((), 0.8),  # a new agent scores as a COMPETENT one
        ((R.COMPLETED,), (1 + 0.8 * 4) / 5),
        ((R.FAILED,), (0 + 0.8 * 4) / 5),
        ((R.COMPLETED,) * 5, 1.0),
        ((R.FAILED, R.COMPLETED, R.COMPLETED, R.PARTIAL, R.COMPLETED), 3 / 5),
        ((R.FAILED,) * 30 + (R.COMPLETED,) * 20, 1.0),  # only the last 20 count
        ((R.COMPLETED,) * 30 + (R.FAILED,) * 10, 10 / 20),
    ],
)
def test_routing_success_rate(outcomes: tuple[TaskOutcome, ...], rate: float, t0: datetime) -> None:
    assert _metrics(*outcomes, at=t0).routing_success_rate == pytest.approx(rate)


def test_counters_rates_and_averages(t0: datetime) -> None:
    m = PerformanceMetrics()
    m.record(R.COMPLETED, 10.0, 0.9, t0)
    m.record(R.PARTIAL, 20.0, None, t0)
    m.record(R.FAILED, 30.0, 0.5, t0)
    assert (m.tasks_completed, m.tasks_partial, m.tasks_failed) == (1, 1, 1)
    assert m.success_rate == pytest.approx(1 / 3)
    assert m.recent_success_rate == pytest.approx(1 / 3)
    assert m.average_duration_seconds == pytest.approx(20.0)
    assert m.average_quality_score == pytest.approx(0.7)
    assert m.consecutive_failures == 1 and m.last_result_at == t0


def test_a_partial_result_ends_a_run_of_failures(t0: datetime) -> None:
    m = _metrics(R.FAILED, R.FAILED, R.PARTIAL, R.FAILED, R.FAILED, at=t0)
    assert m.consecutive_failures == 2 and m.tier is not T.DEGRADED


def test_three_failures_in_a_row_degrade_and_a_success_lifts_it(
    make_agent: MakeAgent, t0: datetime
) -> None:
    agent = make_agent("busy")
    for n in range(3):
        agent.record_result(t0, task_id=f"t-{n}", outcome="failed", duration_seconds=1.0)
    assert agent.tier is T.DEGRADED
    events = agent.pull_events()
    assert [e.type for e in events] == [AgentEventType.RESULT_RECORDED] * 3
    assert events[-1].reason == "task t-2 failed; tier competent -> degraded"
    assert [e.version for e in events] == [2, 3, 4]
    agent.record_result(t0, task_id="t-3", outcome="completed", duration_seconds=1.0)
    assert agent.tier.value == "competent"  # 1 of 4: too few results to judge the rate


def test_coming_back_online_forgives_a_degraded_agent(make_agent: MakeAgent, t0: datetime) -> None:
    agent = make_agent("busy")
    for n in range(3):
        agent.record_result(t0, task_id=f"t-{n}", outcome="failed", duration_seconds=1.0)
    agent.go_offline(t0)
    agent.pull_events()
    agent.heartbeat(t0, [])
    assert agent.tier is T.COMPETENT and agent.performance.consecutive_failures == 0
    [event] = agent.pull_events()
    assert event.type is AgentEventType.ONLINE and "forgiven" in event.reason


def test_a_result_frees_the_task_slot(make_agent: MakeAgent, t0: datetime) -> None:
    agent = make_agent("busy", tasks=("t-1", "t-2"))
    agent.record_result(t0, task_id="t-1", outcome="completed", duration_seconds=3.0)
    assert agent.current_task_ids == ("t-2",)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"task_id": ""}, "task_id"),
        ({"task_id": "has space"}, "task_id"),
        ({"outcome": "won"}, "outcome"),
        ({"duration_seconds": -1.0}, "duration_seconds"),
        ({"duration_seconds": float("nan")}, "duration_seconds"),
        ({"quality_score": 1.5}, "quality_score"),
    ],
)
def test_bad_results_change_nothing(
    make_agent: MakeAgent, t0: datetime, fields: dict[str, object], field: str
) -> None:
    agent = make_agent("busy")
    args: dict[str, object] = {"task_id": "t-1", "outcome": "completed", "duration_seconds": 1.0}
    args.update(fields)
    with pytest.raises(InvalidArgument) as err:
        agent.record_result(t0, **args)  # type: ignore[arg-type]
    assert err.value.field == field
    assert agent.version == 1 and agent.performance.results == 0 and agent.pull_events() == []


def test_results_of_a_batch_are_one_change_with_one_event(
    make_agent: MakeAgent, t0: datetime
) -> None:
    agent = make_agent("busy", tasks=("t-1", "t-2", "t-3", "t-4"))
    runs = [
        RunResult("t-1", "failed", 1.0),
        RunResult("t-2", "failed", 1.0),
        RunResult("t-3", "failed", 2.0),
        RunResult("t-4", "completed", 4.0, 0.5),
    ]
    agent.record_results(t0, runs, actor="task-events")
    m = agent.performance
    assert agent.version == 2 and agent.current_task_ids == ()
    assert (m.results, m.tasks_completed, m.consecutive_failures) == (4, 1, 0)
    assert m.quality_count == 1 and m.total_duration_seconds == 8.0
    [event] = agent.pull_events()
    assert event.type is AgentEventType.RESULT_RECORDED and event.version == 2
    assert event.reason == "4 tasks: 1 completed, 3 failed" and event.actor == "task-events"


def test_a_bad_result_in_a_batch_records_none_of_it(make_agent: MakeAgent, t0: datetime) -> None:
    agent = make_agent("busy", tasks=("t-1",))
    runs = [RunResult("t-1", "completed", 1.0), RunResult("t-2", "won", 1.0)]
    with pytest.raises(InvalidArgument) as err:
        agent.record_results(t0, runs)
    assert err.value.field == "outcome"
    assert agent.version == 1 and agent.performance.results == 0
    assert agent.current_task_ids == ("t-1",) and agent.pull_events() == []
    with pytest.raises(InvalidArgument):
        agent.record_results(t0, [])
