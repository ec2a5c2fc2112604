"""The agent status machine, written out here rather than read from the code."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from orchestrator.agent.domain import (
    LIVE_STATUSES,
    ROUTABLE_STATUSES,
    Agent,
    AgentEventType,
    AgentStatus,
    can_transition,
)
from orchestrator.common.errors import FailedPrecondition, InvalidArgument

MakeAgent = Callable[..., Agent]

ALL = ["registering", "idle", "busy", "draining", "offline", "deregistered"]

EXPECTED: dict[str, set[str]] = {
    "registering": {"idle", "busy", "offline", "deregistered"},
    "idle": {"busy", "draining", "offline", "deregistered"},
    "busy": {"idle", "draining", "offline", "deregistered"},
    "draining": {"offline", "deregistered"},
    "offline": {"idle", "busy", "draining", "deregistered"},
    "deregistered": set(),
}


@pytest.mark.parametrize("current", ALL)
@pytest.mark.parametrize("target", ALL)
def test_transition_table(current: str, target: str) -> None:
    allowed = target in EXPECTED[current]
    assert can_transition(AgentStatus(current), AgentStatus(target)) is allowed


def test_routable_and_live_sets() -> None:
    assert {s.value for s in ROUTABLE_STATUSES} == {"idle", "busy"}
    assert {s.value for s in LIVE_STATUSES} == {"registering", "idle", "busy", "draining"}


@pytest.mark.parametrize("current", ALL)
def test_drain(make_agent: MakeAgent, t0: datetime, current: str) -> None:
    agent = make_agent(current)
    if "draining" not in EXPECTED[current]:
        with pytest.raises(FailedPrecondition, match=f"is {current}; it cannot go to draining"):
            agent.drain(t0)
        assert agent.version == 1 and agent.pull_events() == []
        return
    agent.drain(t0, reason="rolling upgrade", actor="ops")
    assert agent.status is AgentStatus.DRAINING and agent.version == 2
    [event] = agent.pull_events()
    assert event.type is AgentEventType.DRAINING
    assert event.previous_status == AgentStatus(current) and event.reason == "rolling upgrade"


@pytest.mark.parametrize("current", ALL)
def test_deregister_from_anywhere_but_itself(
    make_agent: MakeAgent, t0: datetime, current: str
) -> None:
    agent = make_agent(current, tasks=("t-1",))
    if current == "deregistered":
        with pytest.raises(FailedPrecondition):
            agent.deregister(t0)
        return
    agent.deregister(t0 + timedelta(seconds=5))
    assert agent.status is AgentStatus.DEREGISTERED
    assert agent.deregistered_at == t0 + timedelta(seconds=5)
    assert agent.current_task_ids == ()
    assert [e.type for e in agent.pull_events()] == [AgentEventType.DEREGISTERED]


@pytest.mark.parametrize("current", ALL)
def test_go_offline_only_from_live_states(
    make_agent: MakeAgent, t0: datetime, current: str
) -> None:
    agent = make_agent(current, tasks=("t-1", "t-2"))
    if current in ("offline", "deregistered"):
        with pytest.raises(FailedPrecondition):
            agent.go_offline(t0)
        return
    agent.go_offline(t0, reason="no heartbeat for 10 s")
    assert agent.status is AgentStatus.OFFLINE and agent.current_task_ids == ()
    [event] = agent.pull_events()
    assert event.type is AgentEventType.OFFLINE and event.reason == "no heartbeat for 10 s"


# (status before, tasks reported, status reported, status after, event types)
HEARTBEATS = [
    ("registering", [], None, "idle", ["agent.online"]),
    ("registering", ["t-1"], None, "busy", ["agent.online", "agent.load_changed"]),
    ("offline", [], None, "idle", ["agent.online"]),
    ("idle", [], None, "idle", []),
    ("idle", ["t-1"], None, "busy", ["agent.busy", "agent.load_changed"]),
    ("busy", [], None, "idle", ["agent.idle", "agent.load_changed"]),
    ("idle", [], "busy", "busy", ["agent.busy"]),
    ("busy", ["t-1"], "idle", "idle", ["agent.idle"]),
    ("draining", ["t-1"], "idle", "draining", ["agent.load_changed"]),
    ("deregistered", ["t-1"], None, "deregistered", []),
]


@pytest.mark.parametrize(("before", "tasks", "reported", "after", "events"), HEARTBEATS)
def test_heartbeat_moves_the_status_as_the_contract_says(
    make_agent: MakeAgent,
    t0: datetime,
    before: str,
    tasks: list[str],
    reported: str | None,
    after: str,
    events: list[str],
) -> None:
    agent = make_agent(before, tasks=("t-1",) if before == "busy" else ())
    agent.heartbeat(t0, tasks, AgentStatus(reported) if reported else None)
    assert agent.status is AgentStatus(after)
    emitted = agent.pull_events()
    assert [e.type.value for e in emitted] == events
    status_changes = [e for e in emitted if e.previous_status is not None]
    assert agent.version == 1 + len(status_changes)
    if before != "deregistered":
        assert agent.last_heartbeat_at == t0


@pytest.mark.parametrize("reported", ["draining", "offline", "registering", "deregistered"])
def test_a_worker_may_only_report_idle_or_busy(
    make_agent: MakeAgent, t0: datetime, reported: str
) -> None:
    agent = make_agent("idle")
    with pytest.raises(InvalidArgument) as err:
        agent.heartbeat(t0, [], AgentStatus(reported))
    assert err.value.field == "status"
    assert agent.version == 1 and agent.pull_events() == []


def test_load_change_is_an_unversioned_event(make_agent: MakeAgent, t0: datetime) -> None:
    agent = make_agent("busy", tasks=("t-1",))
    agent.heartbeat(t0, ["t-2", "t-1", "t-2"])
    assert agent.current_task_ids == ("t-1", "t-2") and agent.version == 1
    [event] = agent.pull_events()
    assert event.type is AgentEventType.LOAD_CHANGED and event.version == 1
