"""RouteTask: rank from this process's directory, then (with `reserve`) take a slot in Redis.

Ranking reads memory only. A reservation is decided by one Redis script per try, best agent
first: when the directory's view of a load is behind, the script says the agent is full (or no
longer alive) and the next one is tried, so concurrent routes on any replica never overfill an
agent.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from orchestrator.agent.directory import AgentDirectory
from orchestrator.agent.domain import Agent, Candidate, RouteScore, TaskNeeds
from orchestrator.agent.domain.validation import validate_task_id
from orchestrator.agent.presence import Presence, Reservation
from orchestrator.agent.service import AgentService
from orchestrator.common.errors import FailedPrecondition, InvalidArgument

# How many of the best agents a reserving route tries before it reports them all taken.
RESERVE_TRIES = 16


@dataclass(frozen=True)
class Route:
    agent: Agent
    score: RouteScore
    candidates: list[Candidate]


class Router:
    def __init__(
        self,
        pool: asyncpg.Pool,
        presence: Presence,
        directory: AgentDirectory,
        service: AgentService,
    ) -> None:
        self._pool = pool
        self._presence = presence
        self._directory = directory
        self._service = service

    async def route(
        self,
        needs: TaskNeeds,
        *,
        task_id: str,
        reserve: bool,
        max_candidates: int,
        ignore_load: bool = False,
    ) -> Route:
        if reserve and ignore_load:
            raise InvalidArgument(
                "reserve and ignore_load exclude each other: a reservation counts the load",
                field="ignore_load",
            )
        if max_candidates < 0:
            raise InvalidArgument(
                f"max_candidates must be 0 (all) or more; got {max_candidates}",
                field="max_candidates",
            )
        if reserve and not task_id:
            raise InvalidArgument(
                "task_id is required with reserve: the slot is held for that task",
                field="task_id",
            )
        if task_id:
            validate_task_id(task_id)
        wanted = max(max_candidates, RESERVE_TRIES) if reserve and max_candidates else 0
        if reserve:
            ranking = self._directory.rank(needs, wanted, task_id)
        else:
            ranking = self._directory.rank(needs, max_candidates, count_load=not ignore_load)
        if not ranking.candidates:
            raise FailedPrecondition(self._directory.no_fit_reason(needs, ranking))
        if not reserve:
            return self._route(ranking.candidates[0], ranking.candidates)
        return await self._reserve(task_id, ranking.candidates, max_candidates)

    def _route(self, best: Candidate, candidates: list[Candidate]) -> Route:
        agent = self._directory.get(best.agent.agent_id)
        if agent is None:  # pragma: no cover - ranked agents come from the directory
            raise FailedPrecondition(f"agent {best.agent.agent_id} left while routing")
        return Route(agent, best.score, candidates)

    async def _reserve(self, task_id: str, ranked: list[Candidate], limit: int) -> Route:
        taken: set[str] = set()
        for candidate in ranked[:RESERVE_TRIES]:
            profile = candidate.agent
            outcome = await self._presence.reserve(profile.agent_id, task_id, profile.max_tasks)
            await self._publish(outcome)
            if outcome.reserved:
                rest = [c for c in ranked if c.agent.agent_id not in taken]
                return self._route(candidate, rest[:limit] if limit else rest)
            taken.add(profile.agent_id)
        raise FailedPrecondition(
            f"no eligible agent with a free slot: the {len(taken)} best were filled by "
            "concurrent routes or stopped heart-beating since this replica last heard; "
            "try again"
        )

    async def _publish(self, outcome: Reservation) -> None:
        changes = [s for s in (outcome.slots, outcome.moved) if s is not None and s.changed]
        if not changes:
            # Nothing moved, but a refused try says this replica's view was behind.
            slots = outcome.slots
            self._directory.set_tasks(slots.agent_id, slots.current, slots.at)
            return
        async with self._pool.acquire() as conn:
            for slots in changes:
                await self._service.publish_load(conn, slots)
