"""Consumes task events: keeps a session's task counts and usage current and ends the session
when its root task ends.

Runs inside the consumer's transaction (its inbox row makes each event count once), so the
session's write and its events commit together with the record that the event was handled.

Counts move by deltas, kept in `task_progress`: `task.created` adds one to the total;
entering COMPLETED, FAILED or SKIPPED (told by the event type: every entry into one is that
event) adds one to that count, and leaving one (the event's previous status) takes one off.
A task's usage is added once, when it ends for good (completed, or failed with no retry
left): a task's usage accumulates over its attempts. The session itself is written (counts
copied, usage added) only when a task starts or ends, so creating and scheduling tasks does not
touch it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from google.protobuf import json_format

from orchestrator.api.events.v1 import events_pb2
from orchestrator.api.task.v1 import task_pb2
from orchestrator.common.db import Conn
from orchestrator.common.errors import FailedPrecondition, InvalidArgument, NotFound
from orchestrator.session.domain import Session, SessionStatus, Usage
from orchestrator.session.service import SessionService, parse_session_id
from orchestrator.session.wire import usage_from_proto

log = logging.getLogger(__name__)

DURABLE = "session-on-task-events"
FILTER = "orch.task.>"
ACTOR = "choreography"

_TS = task_pb2.TaskStatus
# The count each status is kept in; the event type that enters it.
_COUNTED = {
    _TS.TASK_STATUS_COMPLETED: "tasks_completed",
    _TS.TASK_STATUS_FAILED: "tasks_failed",
    _TS.TASK_STATUS_SKIPPED: "tasks_skipped",
}
_ENTERS = {
    "task.completed": "tasks_completed",
    "task.failed": "tasks_failed",
    "task.skipped": "tasks_skipped",
}
# The root task's final events, with the status its snapshot must show for the end to be final.
_FINAL = {
    "task.completed": _TS.TASK_STATUS_COMPLETED,
    "task.failed": _TS.TASK_STATUS_FAILED,
    "task.cancelled": _TS.TASK_STATUS_CANCELLED,
    "task.skipped": _TS.TASK_STATUS_SKIPPED,
}
_LIVE = (SessionStatus.RUNNING, SessionStatus.DEGRADED)
_COUNTS = ("tasks_total", "tasks_completed", "tasks_failed", "tasks_skipped")
# The events after which the session's own counts are brought up to date.
_FLUSH = frozenset(
    {"task.started", "task.completed", "task.failed", "task.skipped", "task.cancelled"}
)


@dataclass
class Progress:
    """What one task event changes in its session."""

    deltas: dict[str, int] = field(default_factory=dict)
    usage: Usage | None = None
    # The root's end: "completed", "failed" (with its error) or None.
    root_end: str | None = None
    root_error: str = ""
    root_result: dict[str, object] | None = None

    @property
    def empty(self) -> bool:
        return not any(self.deltas.values()) and self.usage is None and self.root_end is None


def progress_of(event: events_pb2.Event) -> Progress:
    payload = event.task
    task = payload.task
    out = Progress()

    def move(name: str, by: int) -> None:
        out.deltas[name] = out.deltas.get(name, 0) + by

    if event.type == "task.created":
        move("tasks_total", 1)
    left = _COUNTED.get(payload.previous_status)
    if left is not None:
        move(left, -1)
    entered = _ENTERS.get(event.type)
    if entered is not None:
        move(entered, 1)
    final = _FINAL.get(event.type)
    is_final = final is not None and task.status == final
    if is_final and event.type in ("task.completed", "task.failed"):
        out.usage = usage_from_proto(task.usage)
    if is_final and not task.parent_id:
        if event.type == "task.completed":
            out.root_end = "completed"
            out.root_result = (
                json_format.MessageToDict(task.result) if task.HasField("result") else None
            )
        else:
            out.root_end = "failed"
            name = event.type.removeprefix("task.")
            out.root_error = task.error or task.status_reason or f"the root task was {name}"
    return out


def apply_progress(session: Session, now: datetime, p: Progress, totals: dict[str, int]) -> None:
    """Records the counts (`totals`) and usage, then ends a live session whose root task
    ended."""
    counts: dict[str, int | None] = {
        name: value for name, value in totals.items() if getattr(session.metrics, name) != value
    }
    if counts or p.usage is not None:
        session.record_usage(now, usage=p.usage, actor=ACTOR, **counts)
    if p.root_end is None:
        return
    if session.status not in _LIVE:
        log.info(
            "session %s is %s; its root task's end changes nothing", session.id, session.status
        )
        return
    try:
        if p.root_end == "completed":
            session.complete(now, p.root_result, actor=ACTOR)
        elif session.metrics.tasks_completed > 0 and session.status is SessionStatus.RUNNING:
            session.complete(now, {"error": p.root_error}, partial=True, actor=ACTOR)
        else:
            session.fail(now, p.root_error, actor=ACTOR)
    except (FailedPrecondition, InvalidArgument) as exc:
        log.warning("session %s not ended after its root task: %s", session.id, exc)


class TaskEventHandler:
    def __init__(self, service: SessionService) -> None:
        self._service = service

    async def __call__(self, conn: Conn, event: events_pb2.Event) -> None:
        if not event.HasField("task"):
            return
        try:
            session_id = parse_session_id(event.session_id)
        except InvalidArgument:
            return
        progress = progress_of(event)
        if progress.empty and event.type not in _FLUSH:
            return
        totals = await self._count(conn, session_id, progress.deltas)
        if event.type not in _FLUSH and progress.usage is None and progress.root_end is None:
            return

        def act(session: Session, now: datetime) -> None:
            apply_progress(session, now, progress, totals)

        try:
            await self._service.change_in(conn, session_id, act)
        except (NotFound, InvalidArgument):
            # Tasks of a session this service does not know (created through the task API alone).
            log.debug("task event %s for unknown session %s", event.event_id, event.session_id)
        except FailedPrecondition as exc:
            log.info(
                "task event %s not applied to session %s: %s", event.type, event.session_id, exc
            )

    @staticmethod
    async def _count(conn: Conn, session_id: str, deltas: dict[str, int]) -> dict[str, int]:
        """Moves the session's counts by `deltas`; returns them all."""
        by = [deltas.get(name, 0) for name in _COUNTS]
        row = await conn.fetchrow(
            "INSERT INTO session.task_progress AS p (session_id, tasks_total, tasks_completed,"
            " tasks_failed, tasks_skipped) VALUES ($1, greatest($2, 0), greatest($3, 0),"
            " greatest($4, 0), greatest($5, 0)) ON CONFLICT (session_id) DO UPDATE SET"
            " tasks_total = greatest(p.tasks_total + $2, 0),"
            " tasks_completed = greatest(p.tasks_completed + $3, 0),"
            " tasks_failed = greatest(p.tasks_failed + $4, 0),"
            " tasks_skipped = greatest(p.tasks_skipped + $5, 0), updated_at = now()"
            " RETURNING tasks_total, tasks_completed, tasks_failed, tasks_skipped",
            session_id,
            *by,
        )
        assert row is not None
        return {name: int(row[name]) for name in _COUNTS}
