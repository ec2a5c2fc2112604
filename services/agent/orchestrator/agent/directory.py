"""This process's copy of every agent that is not DEREGISTERED, indexed for routing.

RouteTask reads only this: no database round trip. Indexes by capability and by preferred
technology keep the agents scored per route few (see `rank`). The copy is kept current by this
process's own writes at once and by the agent events of every replica (see `follower`); load
comes from Redis, where reservations are decided.

Agents held here are snapshots: nobody mutates one after `put`.
"""

from __future__ import annotations

import dataclasses
from collections import ChainMap, Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime

from orchestrator.agent.domain import (
    Agent,
    AgentProfile,
    AgentStatus,
    Candidate,
    Capability,
    Ranking,
    TaskNeeds,
    no_fit_reason,
    order_key,
    rank,
)
from orchestrator.agent.domain.scoring import W_TECHNOLOGY

# Below this many agents holding the capabilities, scoring them all is as quick as bounding.
PRUNE_FROM = 256
# Bounds are compared with this much slack, so float rounding can only keep an agent in.
_SLACK = 1e-9
_TAKING_WORK = frozenset({AgentStatus.IDLE, AgentStatus.BUSY})


class AgentDirectory:
    def __init__(self, *, prune_from: int = PRUNE_FROM, prefetch: int = 0) -> None:
        # Routes may fill an agent this far past its slots (see Settings.agent_prefetch).
        self._prefetch = prefetch
        self._agents: dict[str, Agent] = {}
        self._profiles: dict[str, AgentProfile] = {}
        self._holders: defaultdict[Capability, set[str]] = defaultdict(set)
        self._preferring: defaultdict[str, set[str]] = defaultdict(set)
        self._tasks: dict[str, tuple[str, ...]] = {}
        self._counts: dict[str, int] = {}
        # Task -> the agents whose current tasks include it (normally one).
        self._task_holders: defaultdict[str, set[str]] = defaultdict(set)
        # When each agent's tasks were read in Redis: an older reading never replaces a newer.
        self._tasks_at: dict[str, datetime] = {}
        # Every agent's ceiling and multiplier, counted: their maxima bound whole groups.
        self._ceilings: Counter[float] = Counter()
        self._multipliers: Counter[float] = Counter()
        self._prune_from = prune_from

    def __len__(self) -> int:
        return len(self._agents)

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._agents

    def put(self, agent: Agent) -> None:
        """Keeps `agent` unless a newer version is held already; DEREGISTERED ones leave."""
        known = self._agents.get(agent.id)
        if known is not None and known.version > agent.version:
            return
        if agent.status is AgentStatus.DEREGISTERED:
            self.remove(agent.id)
            return
        if known is not None:
            self._unindex(known)
        profile = agent.profile()
        if self._prefetch:
            profile = dataclasses.replace(profile, max_tasks=profile.max_tasks + self._prefetch)
        self._agents[agent.id] = agent
        self._profiles[agent.id] = profile
        self._ceilings[profile.ceiling] += 1
        self._multipliers[profile.multiplier] += 1
        for capability in agent.capabilities:
            self._holders[capability].add(agent.id)
        for tech in agent.preferred_technologies:
            self._preferring[tech].add(agent.id)

    def remove(self, agent_id: str) -> None:
        known = self._agents.pop(agent_id, None)
        if known is not None:
            self._unindex(known)
        self._tasks_at.pop(agent_id, None)
        self._index_tasks(agent_id, ())

    def _unindex(self, agent: Agent) -> None:
        profile = self._profiles.pop(agent.id)
        for counter, value in (
            (self._ceilings, profile.ceiling),
            (self._multipliers, profile.multiplier),
        ):
            counter[value] -= 1
            if not counter[value]:
                del counter[value]
        for capability in agent.capabilities:
            self._holders[capability].discard(agent.id)
        for tech in agent.preferred_technologies:
            self._preferring[tech].discard(agent.id)

    def set_tasks(self, agent_id: str, task_ids: tuple[str, ...], at: datetime) -> None:
        """Takes the agent's tasks as Redis had them at `at`, unless a later reading is held:
        events from other replicas may arrive after this process saw a newer change."""
        if agent_id not in self._agents:
            return
        seen = self._tasks_at.get(agent_id)
        if seen is not None and at < seen:
            return
        self._tasks_at[agent_id] = at
        self._index_tasks(agent_id, task_ids)

    def _index_tasks(self, agent_id: str, task_ids: tuple[str, ...]) -> None:
        for task in self._tasks.pop(agent_id, ()):
            holders = self._task_holders[task]
            holders.discard(agent_id)
            if not holders:
                del self._task_holders[task]
        self._counts.pop(agent_id, None)
        if task_ids:
            self._tasks[agent_id] = task_ids
            self._counts[agent_id] = len(task_ids)
            for task in task_ids:
                self._task_holders[task].add(agent_id)

    def slots(self) -> tuple[int, int]:
        """(tasks held, task slots) of the agents that take work now (idle or busy), for the
        utilisation metric."""
        live = [a for a in self._agents.values() if a.status in _TAKING_WORK]
        return sum(self._counts.get(a.id, 0) for a in live), sum(
            a.max_concurrent_tasks for a in live
        )

    def get(self, agent_id: str) -> Agent | None:
        """A copy with its current tasks; callers may change the copy freely."""
        agent = self._agents.get(agent_id)
        if agent is None:
            return None
        record = agent.performance
        return dataclasses.replace(
            agent,
            performance=dataclasses.replace(record, recent=list(record.recent)),
            metadata=dict(agent.metadata),
            current_task_ids=self._tasks.get(agent_id, ()),
            events=[],
        )

    def version_of(self, agent_id: str) -> int | None:
        agent = self._agents.get(agent_id)
        return agent.version if agent is not None else None

    def versions(self) -> dict[str, int]:
        return {ident: agent.version for ident, agent in self._agents.items()}

    def rank(
        self, needs: TaskNeeds, limit: int = 0, task_id: str = "", *, count_load: bool = True
    ) -> Ranking:
        """Ranks the agents holding every required capability (every agent when none is);
        without `count_load`, as if every agent were idle.

        A slot `task_id` holds already counts as free on its agent: routing a task again
        (a retry after a lost reply) may land where it is.
        """
        loads: Mapping[str, int] = self._counts if count_load else {}
        holders = self._task_holders.get(task_id) if task_id and count_load else None
        if holders:
            loads = ChainMap({a: self._counts[a] - 1 for a in holders}, self._counts)
        holding = self._holding(needs)
        if not limit or not needs.technologies or len(holding) < self._prune_from:
            return rank(self._profiles_of(holding), loads, needs, limit)
        return self._rank_bounded(holding, loads, needs, limit)

    def _rank_bounded(
        self, holding: Collection[str], loads: Mapping[str, int], needs: TaskNeeds, limit: int
    ) -> Ranking:
        """Branch and bound on the technology term, the one large term set per task.

        Agents are grouped by how many of the task's technologies they prefer and ranked group
        by group, most first. Once `limit` candidates are known, an agent of a later group is
        scored only if its best possible total (`ceiling` plus its group's technology match)
        reaches the current last candidate; the others cannot get in. The result equals
        scoring everyone; only the refusal counts cover fewer agents, and they matter only
        when no candidate is found, which no bound ever causes.
        """
        techs = needs.technologies
        preferring = sorted((self._preferring.get(t, set()) for t in techs), key=len)
        # Agents preferring every technology come first; the other groups are sorted out only
        # when that one does not settle the route, which is most of the time.
        groups: dict[int, Collection[str]] = {
            len(techs): preferring[0].intersection(*preferring[1:], holding)
        }
        best: list[Candidate] = []
        refused: Counter[str] = Counter()
        for count in range(len(techs), -1, -1):
            reach = W_TECHNOLOGY * count / len(techs)
            floor = best[-1].score.total - _SLACK if len(best) >= limit else None
            if floor is not None and max(self._ceilings) + max(self._multipliers) * reach < floor:
                break  # no agent anywhere reaches it; later groups reach less
            if count not in groups:
                groups.update(_by_match(holding, preferring, groups[len(techs)]))
            agents: Iterable[AgentProfile] = self._profiles_of(groups.get(count, ()))
            if floor is not None:
                agents = [a for a in agents if a.ceiling + a.multiplier * reach >= floor]
            part = rank(agents, loads, needs, limit)
            best = sorted([*best, *part.candidates], key=order_key)[:limit]
            refused += part.refused
        return Ranking(best, refused)

    def _profiles_of(self, ids: Iterable[str]) -> Iterable[AgentProfile]:
        return map(self._profiles.__getitem__, ids)

    def _holding(self, needs: TaskNeeds) -> Collection[str]:
        if not needs.capabilities:
            return self._agents.keys()
        sets = sorted((self._holders.get(c, set()) for c in needs.capabilities), key=len)
        if len(sets) == 1:
            return sets[0]
        return sets[0].intersection(*sets[1:])

    def no_fit_reason(self, needs: TaskNeeds, ranking: Ranking) -> str:
        holders = {c: len(self._holders.get(c, ())) for c in needs.capabilities}
        return no_fit_reason(needs, holders, ranking.refused)


def _by_match(
    holding: Collection[str], preferring: list[set[str]], full: Collection[str]
) -> dict[int, Collection[str]]:
    """`holding` minus `full`, grouped by how many of the `preferring` sets hold each."""
    matches: Counter[str] = Counter()
    for agents in preferring:
        matches.update(agents.intersection(holding).difference(full))
    groups: dict[int, list[str]] = defaultdict(list)
    for ident, count in matches.items():
        groups[count].append(ident)
    rest = set(holding).difference(matches)
    return {**groups, 0: rest.difference(full)}
