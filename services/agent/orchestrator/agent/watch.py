"""WatchAgents: every matching agent as it is now, then again after every change."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from orchestrator.agent.domain import AgentEventType, AgentStatus, AgentType
from orchestrator.agent.follower import SUBJECT
from orchestrator.agent.repository import AgentFilter
from orchestrator.agent.service import AgentService
from orchestrator.agent.wire import agent_to_proto, enum_to_proto
from orchestrator.api.agent.v1 import agent_pb2 as pb
from orchestrator.api.events.v1 import events_pb2
from orchestrator.common.paging import MAX_PAGE_SIZE

_QUEUE = 10_000


def matches(event: events_pb2.Event, f: AgentFilter) -> bool:
    """An event is shown when the agent matches the filter before or after it, so a watcher
    filtering on IDLE still sees the agent leave (and DEREGISTERED ones say goodbye)."""
    if event.WhichOneof("payload") != "agent":
        return False
    agent = event.agent.agent
    if f.ids and agent.id not in f.ids:
        return False
    if f.agent_types and agent.agent_type not in {
        enum_to_proto(AgentType(t)) for t in f.agent_types
    }:
        return False
    wanted = f.statuses or tuple(s.value for s in AgentStatus if s is not AgentStatus.DEREGISTERED)
    statuses = {enum_to_proto(AgentStatus(s)) for s in wanted}
    return agent.status in statuses or event.agent.previous_status in statuses


async def watch_agents(
    service: AgentService, nc: NATS, f: AgentFilter
) -> AsyncIterator[pb.WatchAgentsResponse]:
    """Subscribes before reading the snapshot so no change between the two is missed; events
    the snapshot already shows are skipped."""
    queue: asyncio.Queue[Msg] = asyncio.Queue(maxsize=_QUEUE)
    sub = await nc.subscribe(SUBJECT, cb=queue.put)
    try:
        seen: dict[str, int] = {}
        token = ""
        read_at = service.now()
        while True:
            page = await service.list_agents(f, MAX_PAGE_SIZE, token)
            for agent in page.items:
                seen[agent.id] = agent.version
                yield pb.WatchAgentsResponse(agent=agent_to_proto(agent))
            token = page.next_token
            if not token:
                break
        while True:
            event = events_pb2.Event.FromString((await queue.get()).data)
            if matches(event, f) and _news(event, seen.get(event.aggregate_id, 0), read_at):
                seen[event.aggregate_id] = event.aggregate_version
                yield pb.WatchAgentsResponse(agent=event.agent.agent, event_type=event.type)
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


def _news(event: events_pb2.Event, seen_version: int, read_at: datetime) -> bool:
    """A versioned change is news when newer than what was shown. A load change repeats the
    version before it, so it is news when it happened after the snapshot was read."""
    if event.aggregate_version > seen_version:
        return True
    if event.type != AgentEventType.LOAD_CHANGED or event.aggregate_version < seen_version:
        return False
    return event.occurred_at.ToDatetime(tzinfo=UTC) >= read_at
