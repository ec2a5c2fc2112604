"""Consumes agent events: an agent that went offline loses its leases, and any change of the
fleet (an agent joined, came back, drained, left) drops the cached rankings routing reads.

Its worker stopped heart-beating (or is gone for good), so the tasks assigned to it — running or
still waiting in its queue — go back to READY at once for another agent, rather than when their
leases run out. Should the worker come back and report one of them, its fencing token is stale
by then and the report is refused: the task runs to its end once, on the agent that holds it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from orchestrator.api.events.v1 import events_pb2
from orchestrator.common.db import Conn
from orchestrator.common.errors import FailedPrecondition, NotFound
from orchestrator.task.domain import LEASED_STATUSES, Peer, Task
from orchestrator.task.service import TaskService

log = logging.getLogger(__name__)

DURABLE = "task-on-agent-events"
# Not the frequent ones (load, busy/idle, results): the cached rankings expire soon enough for
# those. A deregistered agent was drained first, and its tasks' leases run out if it had any.
FILTER = tuple(
    f"orch.agent.*.{name}"
    for name in ("registered", "online", "draining", "offline", "deregistered")
)
ACTOR = "choreography"
_GONE = {"agent.offline": "went offline"}

_LEASED_TO = (
    "SELECT id::text FROM task.tasks WHERE assigned_agent_id = $1"
    " AND status = ANY($2::text[]) ORDER BY seq"
)


class AgentEventHandler:
    def __init__(self, service: TaskService, on_change: Callable[[], None] = lambda: None) -> None:
        self._service = service
        self._on_change = on_change

    async def __call__(self, conn: Conn, event: events_pb2.Event) -> None:
        if not event.aggregate_id:
            return
        self._service.forget_rankings()
        how = _GONE.get(event.type)
        if how is None:
            self._on_change()  # an agent that can take work: schedule now
            return
        agent_id = event.aggregate_id
        rows = await conn.fetch(_LEASED_TO, agent_id, [s.value for s in LEASED_STATUSES])
        reason = f"its agent {how}"
        released = 0
        for row in rows:
            try:
                _, done = await self._service.change(row[0], None, _releaser(agent_id, reason))
            except (NotFound, FailedPrecondition) as exc:
                log.debug("task %s not released: %s", row[0], exc)
                continue
            released += done
        if released:
            log.info("agent %s %s: %d of its tasks back to READY", agent_id, how, released)
            self._on_change()


def _releaser(agent_id: str, reason: str) -> Callable[[Task, datetime, Mapping[str, Peer]], bool]:
    def release(task: Task, now: datetime, _: Mapping[str, Peer]) -> bool:
        # Re-read under the session's lock: only a lease this agent still holds is taken back.
        if task.status not in LEASED_STATUSES or task.assigned_agent_id != agent_id:
            return False
        task.release(now, 0, reason, actor=ACTOR)
        return True

    return release
