"""Choosing an agent for a task: the agent service ranks, this service counts.

The agent service scores agents by capability, track record, technologies and complexity
(RouteTask). The task service holds the leases, so it knows each agent's load better than anyone:
it asks for the ranking of a kind of work once with `ignore_load` (every eligible agent, full ones
too, scored as if idle), keeps it for ROUTE_CACHE_SECONDS — about a heartbeat's span — or until
an agent joins, drains or goes offline, and puts each task on the best agent with a free slot,
the utilisation term of the score recomputed from its own count of that agent's leases. One
RouteTask call per kind of work and cache span instead of one per task, and no reservation to
give back afterwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import grpc

from orchestrator.api.agent.v1 import agent_pb2, agent_pb2_grpc
from orchestrator.common.errors import FailedPrecondition, Unavailable
from orchestrator.task.domain import Capability, Task, TaskComplexity
from orchestrator.task.wire import enum_to_proto

ROUTE_TIMEOUT_SECONDS = 5.0
ROUTE_CACHE_SECONDS = 2.0
# The utilisation weight of RouteScore's formula (see agent.proto).
W_UTILISATION = 0.15

# The agent service's refusals that mean "no agent fits this task now", not "it is down".
_NO_AGENT_CODES = (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT)


class NoEligibleAgent(FailedPrecondition):
    """No agent can take the task now; the message says why. The task waits, READY."""


@dataclass(frozen=True)
class Needs:
    """What routing looks at in a task; tasks with equal needs share one ranking."""

    capabilities: tuple[Capability, ...] = ()
    technologies: tuple[str, ...] = ()
    complexity: TaskComplexity = TaskComplexity.MODERATE
    # Agents the task failed on: avoided while another agent can take it.
    excluded: tuple[str, ...] = ()

    @classmethod
    def of(cls, task: Task) -> Needs:
        return cls(
            tuple(task.required_capabilities),
            tuple(task.technologies),
            task.complexity,
            tuple(task.failed_agent_ids),
        )

    @classmethod
    def from_json(
        cls, complexity: str, capabilities: str, technologies: str, excluded: str
    ) -> Needs:
        """From a stored task body's fields (JSON text), as the scheduler's query reads them."""
        return cls(
            tuple(Capability(c) for c in json.loads(capabilities or "[]")),
            tuple(json.loads(technologies or "[]")),
            TaskComplexity(complexity) if complexity else TaskComplexity.MODERATE,
            tuple(json.loads(excluded or "[]")),
        )

    def without_exclusions(self) -> Needs:
        return replace(self, excluded=())


@dataclass(frozen=True)
class RankedAgent:
    """An eligible agent as ranked for some needs, with what its score does not depend on."""

    agent_id: str
    name: str
    # Tasks it may hold, assigned or running (its slots plus the agent service's prefetch).
    slots: int
    # The weighted sum of its score when idle, and its tier multiplier.
    idle_sum: float
    multiplier: float

    def utilisation(self, load: int) -> float:
        return min(load / self.slots, 1.0) if self.slots > 0 else 1.0

    def score(self, load: int) -> float:
        """RouteScore.total at `load` tasks: only the utilisation term moves with the load."""
        return (self.idle_sum - W_UTILISATION * self.utilisation(load)) * self.multiplier


def pick(ranked: Sequence[RankedAgent], loads: Mapping[str, int]) -> RankedAgent | None:
    """The agent with a free slot that scores best at its current load; ties go to the less
    loaded, then by name (as the agent service breaks them). None when all are full."""
    best: RankedAgent | None = None
    best_key: tuple[float, float, str] | None = None
    for agent in ranked:
        load = loads.get(agent.agent_id, 0)
        if load >= agent.slots:
            continue
        key = (-round(agent.score(load), 9), agent.utilisation(load), agent.name)
        if best_key is None or key < best_key:
            best, best_key = agent, key
    return best


class Ranker(Protocol):
    async def ranked(self, needs: Needs, *, fresh: bool = False) -> list[RankedAgent]:
        """Every eligible agent for `needs`, full ones included (`fresh`: not from a cache);
        raises NoEligibleAgent when none fits, or Unavailable when it cannot be asked."""
        ...

    def forget(self) -> None:
        """Drops cached rankings: the fleet changed."""
        ...


class AgentServiceRanker:
    """Asks AgentService.RouteTask (ignore_load, all candidates) and caches the answer, refusals
    included, per needs for ROUTE_CACHE_SECONDS."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        address: str,
        *,
        ttl_seconds: float = ROUTE_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stub = agent_pb2_grpc.AgentServiceStub(channel)
        self._address = address
        self._ttl = ttl_seconds
        self._clock = clock
        # needs -> (when asked, the ranking or the refusal's reason)
        self._cache: dict[Needs, tuple[float, list[RankedAgent] | str]] = {}

    def forget(self) -> None:
        self._cache.clear()

    async def ranked(self, needs: Needs, *, fresh: bool = False) -> list[RankedAgent]:
        now = self._clock()
        cached = self._cache.get(needs)
        if fresh or cached is None or now - cached[0] >= self._ttl:
            cached = (now, await self._ask(needs))
            if len(self._cache) > 4096:  # kinds of work come and go; keep the cache bounded
                self._cache.clear()
            self._cache[needs] = cached
        answer = cached[1]
        if isinstance(answer, str):
            raise NoEligibleAgent(answer)
        return answer

    async def _ask(self, needs: Needs) -> list[RankedAgent] | str:
        request = agent_pb2.RouteTaskRequest(
            required_capabilities=[enum_to_proto(c) for c in needs.capabilities],
            technologies=needs.technologies,
            complexity=enum_to_proto(needs.complexity),
            excluded_agent_ids=needs.excluded,
            ignore_load=True,
            max_candidates=0,
        )
        try:
            reply = await self._stub.RouteTask(request, timeout=ROUTE_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _NO_AGENT_CODES:
                return exc.details() or "no agent fits the task"
            raise Unavailable(
                f"the agent service at {self._address} did not rank agents: "
                f"{exc.code().name} {exc.details() or ''}".rstrip()
            ) from exc
        return [
            RankedAgent(
                agent_id=c.agent_id,
                name=c.agent_name,
                slots=c.max_concurrent_tasks,
                idle_sum=c.score.weighted_sum,
                multiplier=c.score.tier_multiplier,
            )
            for c in reply.candidates
        ]


async def choose_agent(
    ranker: Ranker, needs: Needs, loads: Mapping[str, int], *, fresh: bool = False
) -> str | None:
    """The best agent with a free slot for `needs`, or None when every eligible one is full.
    Agents the task failed on are passed over while another can take it (retrying on a known
    agent beats waiting forever). Raises NoEligibleAgent when no agent fits at all."""
    try:
        choice = pick(await ranker.ranked(needs, fresh=fresh), loads)
    except NoEligibleAgent:
        if not needs.excluded:
            raise
        choice = None
    if choice is None and needs.excluded:
        choice = pick(await ranker.ranked(needs.without_exclusions(), fresh=fresh), loads)
    return choice.agent_id if choice is not None else None
