"""The in-memory directory routing reads: its index, versions, load readings and refusals."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from orchestrator.agent.directory import AgentDirectory
from orchestrator.agent.domain import (
    Agent,
    AgentStatus,
    Capability,
    SessionType,
    TaskComplexity,
    TaskNeeds,
    TaskOutcome,
    rank,
)

MakeAgent = Callable[..., Agent]
C = Capability


def _needs(*capabilities: Capability) -> TaskNeeds:
    return TaskNeeds(capabilities=frozenset(capabilities))


def _names(directory: AgentDirectory, needs: TaskNeeds, task_id: str = "") -> list[str]:
    return [c.agent.name for c in directory.rank(needs, task_id=task_id).candidates]


def test_only_agents_holding_every_capability_are_considered(make_agent: MakeAgent) -> None:
    directory = AgentDirectory()
    directory.put(make_agent("idle", name="AGENT-CODE", primary_capabilities=["code_generation"]))
    directory.put(
        make_agent(
            "idle",
            name="AGENT-BOTH",
            primary_capabilities=["testing"],
            secondary_capabilities=["code_generation"],
        )
    )
    assert _names(directory, _needs(C.CODE_GENERATION)) == ["AGENT-CODE", "AGENT-BOTH"]
    assert _names(directory, _needs(C.CODE_GENERATION, C.TESTING)) == ["AGENT-BOTH"]
    assert len(_names(directory, _needs())) == 2
    ranking = directory.rank(_needs(C.SECURITY_AUDIT))
    assert directory.no_fit_reason(_needs(C.SECURITY_AUDIT), ranking) == (
        "no agent holds SECURITY_AUDIT"
    )


def test_a_newer_version_wins_and_deregistered_agents_leave(
    make_agent: MakeAgent, t0: datetime
) -> None:
    directory = AgentDirectory()
    agent = make_agent("idle", primary_capabilities=["testing"])
    directory.put(agent)
    newer = make_agent("idle", agent_id=agent.id, primary_capabilities=["debugging"])
    newer.version = 2
    directory.put(newer)
    directory.put(agent)  # an old copy arriving late changes nothing
    assert directory.version_of(agent.id) == 2
    assert _names(directory, _needs(C.TESTING)) == []
    assert len(_names(directory, _needs(C.DEBUGGING))) == 1
    gone = directory.get(agent.id)
    assert gone is not None
    gone.deregister(t0)
    directory.put(gone)
    assert agent.id not in directory and len(directory) == 0


def test_an_older_load_reading_never_replaces_a_newer(make_agent: MakeAgent, t0: datetime) -> None:
    directory = AgentDirectory()
    agent = make_agent("idle", max_concurrent_tasks=1)
    directory.put(agent)
    directory.set_tasks(agent.id, ("t-1",), t0 + timedelta(seconds=1))
    directory.set_tasks(agent.id, (), t0)
    held = directory.get(agent.id)
    assert held is not None and held.current_task_ids == ("t-1",)
    ranking = directory.rank(_needs(C.CODE_GENERATION))
    assert ranking.candidates == [] and ranking.refused["at capacity"] == 1
    # Routing t-1 again may land where t-1 holds its slot.
    assert _names(directory, _needs(C.CODE_GENERATION), task_id="t-1") == [agent.name]
    directory.set_tasks(agent.id, (), t0 + timedelta(seconds=2))
    assert _names(directory, _needs(C.CODE_GENERATION)) == [agent.name]


def test_prefetch_lets_a_full_agent_take_queued_work(make_agent: MakeAgent, t0: datetime) -> None:
    directory = AgentDirectory(prefetch=1)
    busy = make_agent("idle", max_concurrent_tasks=1)
    directory.put(busy)
    directory.set_tasks(busy.id, ("t-1",), t0)
    needs = _needs(C.CODE_GENERATION)
    # Its one slot runs t-1; one more may wait in its queue, a third may not.
    assert _names(directory, needs) == [busy.name]
    directory.set_tasks(busy.id, ("t-1", "t-2"), t0 + timedelta(seconds=1))
    ranking = directory.rank(needs)
    assert ranking.candidates == [] and ranking.refused["at capacity"] == 1
    # An agent with a free slot still comes first.
    free = make_agent("idle", max_concurrent_tasks=1)
    directory.put(free)
    directory.set_tasks(busy.id, ("t-1",), t0 + timedelta(seconds=2))
    assert _names(directory, needs)[0] == free.name


def test_copies_handed_out_do_not_change_the_directory(make_agent: MakeAgent, t0: datetime) -> None:
    directory = AgentDirectory()
    agent = make_agent("busy")
    directory.put(agent)
    copy = directory.get(agent.id)
    assert copy is not None
    copy.record_result(t0, task_id="t-1", outcome="failed", duration_seconds=1.0)
    copy.drain(t0)
    held = directory.get(agent.id)
    assert held is not None
    assert held.status is AgentStatus.BUSY and held.performance.results == 0
    assert held.version == 1


def test_bounded_ranking_finds_what_scoring_everyone_finds(t0: datetime) -> None:
    """The technology bound only skips agents that cannot make the best few."""
    rng = random.Random(11)
    caps, techs = list(Capability), ["python", "go", "rust", "sql", "react", "java"]
    bounded = AgentDirectory(prune_from=0)
    for n in range(400):
        held = rng.sample(caps, 5)
        agent = Agent.create(
            now=t0,
            name=f"AGENT-R-{n:03d}",
            agent_type="implementer",
            primary_capabilities=held[:3],
            secondary_capabilities=held[3:],
            preferred_technologies=rng.sample(techs, rng.randint(0, 3)),
            preferred_session_types=rng.sample(list(SessionType), rng.randint(0, 2)),
            complexity_preference=rng.choice([None, *TaskComplexity]),
            max_concurrent_tasks=rng.randint(1, 3),
        )
        agent.status = rng.choice([AgentStatus.IDLE, AgentStatus.BUSY, AgentStatus.DRAINING])
        for outcome in rng.choices(list(TaskOutcome), k=rng.randint(0, 8)):
            agent.performance.record(outcome, 1.0, None, t0)
        bounded.put(agent)
        bounded.set_tasks(agent.id, tuple(f"t{i}" for i in range(rng.randint(0, 2))), t0)
    copies = [a for a in map(bounded.get, bounded.versions()) if a is not None]
    everyone = [a.profile() for a in copies]
    loads = {a.id: len(a.current_task_ids) for a in copies}
    for _ in range(200):
        task = TaskNeeds(
            capabilities=frozenset(rng.sample(caps, rng.randint(0, 1))),
            technologies=frozenset(rng.sample(techs, rng.randint(1, 3))),
            session_type=rng.choice([None, *SessionType]),
            complexity=rng.choice([None, *TaskComplexity]),
        )
        limit = rng.randint(1, 5)
        assert bounded.rank(task, limit).candidates == rank(everyone, loads, task, limit).candidates
