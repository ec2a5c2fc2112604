"""Consumes session events: a started session gets its root task, decomposed; a retried
session that starts again gets its ended work reopened; the session's events keep the
`sessions` table (status, parallel limit) the scheduler reads current.

Idempotent: the root task's id is derived from the session's id, and creating it again returns
the stored task; a root already decomposed is not decomposed again. The reopening runs in the
consumer's transaction, so it happens once per start event, with the event's inbox record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.session.v1 import session_pb2
from orchestrator.common.db import Conn
from orchestrator.common.errors import FailedPrecondition, InvalidArgument, NotFound
from orchestrator.common.ids import root_task_id
from orchestrator.task.domain import Capability, DecompositionTemplate
from orchestrator.task.reopen import reopen_session
from orchestrator.task.service import TaskService

log = logging.getLogger(__name__)

DURABLE = "task-on-session-events"
# Every session event but the frequent ones that change neither the status nor the limits the
# scheduler reads (usage recorded after task runs, checkpoints): those would cost a transaction
# here each for nothing.
FILTER = tuple(
    f"orch.session.*.{name}"
    for name in (
        "created", "queued", "started", "paused", "resumed", "stopped", "cancelled",
        "completed", "partially_completed", "failed", "degraded", "timed_out", "retried",
        "deleted",
    )
)  # fmt: skip
ACTOR = "choreography"
DEFAULT_CAPABILITIES = (Capability.CODE_GENERATION,)


def status_name(number: session_pb2.SessionStatus.ValueType) -> str:
    name: str = session_pb2.SessionStatus.Name(number)
    return name.removeprefix("SESSION_STATUS_").lower()


def root_fields(session: session_pb2.Session) -> dict[str, Any]:
    """What CreateTask gets for the root task of `session`, from its prompt and agent config."""
    config: Mapping[str, str] = session.agent_config
    wanted = [c.strip() for c in config.get("capabilities", "").split(",") if c.strip()]
    try:
        capabilities = [Capability(c) for c in wanted] or list(DEFAULT_CAPABILITIES)
    except ValueError:
        log.warning("session %s: unknown capability in %r; using defaults", session.id, wanted)
        capabilities = list(DEFAULT_CAPABILITIES)
    task_input: dict[str, Any] = {}
    if config.get("command"):
        task_input["command"] = config["command"]
    return {
        "task_id": root_task_id(session.id),
        "title": session.title,
        "description": session.initial_prompt,
        "required_capabilities": capabilities,
        "input": task_input or None,
        "metadata": {"root_of_session": session.id},
        "max_attempts": _config_number(session, "max_attempts", 0),
        "created_by": ACTOR,
    }


def _config_number(session: session_pb2.Session, key: str, default: int) -> int:
    raw = session.agent_config.get(key, "")
    try:
        return max(0, int(raw)) if raw else default
    except ValueError:
        log.warning("session %s: %s %r is not a number; using %d", session.id, key, raw, default)
        return default


def max_depth_of(session: session_pb2.Session) -> int:
    return _config_number(session, "max_depth", 1)


# A session that ends this way takes its remaining work with it (SPEC §3 step 7).
_ABORTING = frozenset({"session.stopped", "session.cancelled"})


class SessionEventHandler:
    """The consumer's handler; `on_change` is called after a write the scheduler should see."""

    def __init__(self, service: TaskService, on_change: Callable[[], None] = lambda: None) -> None:
        self._service = service
        self._on_change = on_change

    async def __call__(self, conn: Conn, event: events_pb2.Event) -> None:
        if not event.HasField("session"):
            return
        session = event.session.session
        status = status_name(session.status)
        await record_session(conn, session, status, event.aggregate_version)
        if event.type == "session.started":
            await self.ensure_root(session)
            if session.metrics.retry_count:
                await self.reopen_work(conn, session)
        elif event.type in _ABORTING:
            await self.cancel_work(session.id, f"the session was {status}")
        self._on_change()

    async def reopen_work(self, conn: Conn, session: session_pb2.Session) -> None:
        """A retried session starts again: what ended without completing runs again, what
        completed does not. On `conn`, after `ensure_root` (which takes the session's lock on a
        connection of its own, so it must be done before this transaction takes it)."""
        retry = session.metrics.retry_count
        reason = f"reopened for retry {retry} of the session"
        changed = await reopen_session(conn, session.id, self._service.now(), reason, actor=ACTOR)
        log.info("session %s: retry %d changed %d tasks", session.id, retry, len(changed))

    async def cancel_work(self, session_id: str, reason: str) -> None:
        """Cancels the root task, which cancels every task below it, running ones included:
        their `task.cancelled` events make the workers kill those runs."""
        try:
            await self._service.change(
                root_task_id(session_id),
                None,
                lambda t, now, _: t.cancel(now, reason, actor=ACTOR),
            )
        except NotFound:
            return  # the session never got tasks
        except FailedPrecondition as exc:
            # Ended already, or cancelled by an earlier delivery of this event.
            log.info("session %s: root task not cancelled: %s", session_id, exc)

    async def ensure_root(self, session: session_pb2.Session) -> None:
        """Creates the session's root task and decomposes it, unless that was done already."""
        fields = root_fields(session)
        try:
            root = await self._service.create(session_id=session.id, **fields)
        except InvalidArgument as exc:
            # A session whose prompt makes no valid task: nothing can run; say so and go on.
            log.error("session %s: no root task could be made: %s", session.id, exc)
            return
        depth = max_depth_of(session)
        if depth == 0 or root.is_parent:
            return
        try:
            await self._service.decompose(
                root.id, None, DecompositionTemplate.AUTO, depth, actor=ACTOR
            )
        except FailedPrecondition as exc:
            # Decomposed (or started) by an earlier delivery meanwhile.
            log.info("session %s: root task not decomposed: %s", session.id, exc)


async def record_session(
    conn: Conn, session: session_pb2.Session, status: str, version: int
) -> None:
    await conn.execute(
        "INSERT INTO task.sessions (session_id, status, max_parallel_tasks, version,"
        " token_budget, cost_budget_usd, deleted) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (session_id) DO UPDATE SET"
        " status = EXCLUDED.status, max_parallel_tasks = EXCLUDED.max_parallel_tasks,"
        " version = EXCLUDED.version, token_budget = EXCLUDED.token_budget,"
        " cost_budget_usd = EXCLUDED.cost_budget_usd, deleted = EXCLUDED.deleted,"
        " updated_at = now()"
        " WHERE task.sessions.version < EXCLUDED.version",
        session.id,
        status,
        max(0, session.limits.max_parallel_tasks),
        version,
        max(0, session.limits.token_budget),
        max(0.0, session.limits.cost_budget_usd),
        session.HasField("deleted_at"),
    )
