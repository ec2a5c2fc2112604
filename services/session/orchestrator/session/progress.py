"""Consumes task events: keeps a session's task counts and usage current, pauses it when a
budget runs out, and ends it when its root task ends.

Runs inside the consumer's transaction (its inbox row makes each event count once), so the
session's write and its events commit together with the record that the event was handled.

Counts move by deltas, kept in `task_progress`: `task.created` adds one to the total;
entering COMPLETED, FAILED or SKIPPED (told by the event type: every entry into one is that
event) adds one to that count, and leaving one (the event's previous status) takes one off.
Usage counts as soon as a run ends (a retried attempt's too, so budgets see it at once): a
task's usage grows with each run, and `task_usage` keeps what was counted of it, so an event
adds only the difference. The session itself is written (counts copied, usage added) only when
a task starts or ends or its usage grew, so creating and scheduling tasks does not touch it.
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
from orchestrator.common.ids import root_task_id
from orchestrator.session.domain import Session, SessionStatus, Usage
from orchestrator.session.service import SessionService, observe_budget, parse_session_id
from orchestrator.session.wire import usage_from_proto

log = logging.getLogger(__name__)

DURABLE = "session-on-task-events"
# Every task event but those that never move a count, usage or the session's end (the busiest:
# ready, assigned, routing notes, releases).
FILTER = tuple(
    f"orch.task.*.*.{name}"
    for name in (
        "created", "started", "completed", "awaiting_approval", "held", "failed",
        "retry_scheduled", "blocked", "paused", "resumed", "cancelled", "skipped", "rejected",
        "reopened",
    )
)  # fmt: skip
ACTOR = "choreography"
# Counts and usage fold into one write per session per batch: under load, the first event of a
# batch waits this long for others (a session's figures lag by as much), up to BATCH events.
LINGER_SECONDS = 0.05
BATCH = 256

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
_USAGE = (
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
)
# The events after which the session's own counts are brought up to date.
_FLUSH = frozenset(
    {
        "task.started",
        "task.completed",
        "task.failed",
        "task.skipped",
        "task.cancelled",
        "task.reopened",
    }
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
    # The root task was reopened (a retry runs it again): its last end no longer holds.
    root_reopened: bool = False

    @property
    def empty(self) -> bool:
        return (
            not any(self.deltas.values())
            and self.usage is None
            and self.root_end is None
            and not self.root_reopened
        )


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
    if event.type == "task.reopened" and _is_root(task, event.session_id):
        out.root_reopened = True
    final = _FINAL.get(event.type)
    is_final = final is not None and task.status == final
    if is_final and _is_root(task, event.session_id):
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
    """Records the counts (`totals`) and usage, ends a session whose root task ended, and
    pauses one still running whose budget is exhausted."""
    counts: dict[str, int | None] = {
        name: value for name, value in totals.items() if getattr(session.metrics, name) != value
    }
    if counts or p.usage is not None:
        session.record_usage(now, usage=p.usage, actor=ACTOR, **counts)
        if p.usage is not None:
            observe_budget(session)
    if p.root_end is not None:
        _end(session, now, p)
    session.pause_if_over_budget(now, actor=ACTOR)


def _end(session: Session, now: datetime, p: Progress) -> None:
    if session.status is SessionStatus.PAUSED:
        # Runs under way when it paused (for a budget, say) finished the work: it ends too.
        session.wake_to_end(now, f"its root task {p.root_end} while paused", actor=ACTOR)
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


def _is_root(task: task_pb2.Task, session_id: str) -> bool:
    """The session's root task, whose end is the session's; other top-level tasks (added
    through the API) end only themselves."""
    try:
        return task.id == root_task_id(session_id)
    except ValueError:
        return False


@dataclass
class _Folded:
    """What a batch of task events changes in one session."""

    progress: Progress = field(default_factory=Progress)
    # An event after which the session's own counts are brought up to date was among them.
    flush: bool = False

    def add(self, p: Progress) -> None:
        deltas = self.progress.deltas
        for name, by in p.deltas.items():
            deltas[name] = deltas.get(name, 0) + by
        if p.root_reopened:
            self.progress.root_end, self.progress.root_reopened = None, True
        if p.root_end is not None:
            self.progress.root_end = p.root_end
            self.progress.root_error, self.progress.root_result = p.root_error, p.root_result

    def add_usage(self, used: Usage) -> None:
        known = self.progress.usage
        self.progress.usage = used if known is None else known + used


class TaskEventHandler:
    """Per event, or per fetched batch (`handle_batch`): a batch's events fold into one write
    per session — its counts moved once by their summed deltas, the usage they add, its
    root's end — instead of one per event."""

    def __init__(self, service: SessionService) -> None:
        self._service = service

    async def __call__(self, conn: Conn, event: events_pb2.Event) -> None:
        await self.handle_batch(conn, [event])

    async def handle_batch(self, conn: Conn, events: list[events_pb2.Event]) -> None:
        folded: dict[str, _Folded] = {}
        for event in events:
            if not event.HasField("task"):
                continue
            try:
                session_id = parse_session_id(event.session_id)
            except InvalidArgument:
                continue
            progress = progress_of(event)
            used = usage_from_proto(event.task.task.usage)
            if progress.empty and used == Usage() and event.type not in _FLUSH:
                continue
            into = folded.setdefault(session_id, _Folded())
            into.add(progress)
            into.flush |= event.type in _FLUSH
            if used != Usage():
                added = await self._new_usage(conn, session_id, event.task.task.id, used)
                if added is not None:
                    into.add_usage(added)
        for session_id, one in folded.items():
            await self._apply(conn, session_id, one)

    async def _apply(self, conn: Conn, session_id: str, folded: _Folded) -> None:
        progress = folded.progress
        totals = await self._count(conn, session_id, progress.deltas)
        if progress.root_end is not None or progress.root_reopened:
            await conn.execute(
                "UPDATE session.task_progress SET root_status = $2 WHERE session_id = $1",
                session_id,
                progress.root_end,
            )
        if not folded.flush and progress.usage is None and progress.root_end is None:
            return

        def act(session: Session, now: datetime) -> None:
            apply_progress(session, now, progress, totals)

        try:
            await self._service.change_in(conn, session_id, act)
        except (NotFound, InvalidArgument):
            # Tasks of a session this service does not know (created through the task API alone).
            log.debug("task events for unknown session %s", session_id)
        except FailedPrecondition as exc:
            log.info("task events not applied to session %s: %s", session_id, exc)

    @staticmethod
    async def _new_usage(conn: Conn, session_id: str, task_id: str, used: Usage) -> Usage | None:
        """What `used` (the task's usage in the event) adds to what was counted of the task;
        None when nothing. Each field only grows, so a late or repeated event adds nothing."""
        await conn.execute(
            "INSERT INTO session.task_usage (task_id, session_id) VALUES ($1, $2)"
            " ON CONFLICT (task_id) DO NOTHING",
            task_id,
            session_id,
        )
        row = await conn.fetchrow(
            f"SELECT {', '.join(_USAGE)} FROM session.task_usage WHERE task_id = $1 FOR UPDATE",
            task_id,
        )
        assert row is not None
        counted = Usage(**{name: row[name] for name in _USAGE})
        added = Usage(
            **{name: max(0, getattr(used, name) - getattr(counted, name)) for name in _USAGE}
        )
        if added == Usage():
            return None
        await conn.execute(
            f"UPDATE session.task_usage SET ({', '.join(_USAGE)}, updated_at) ="
            " ($2, $3, $4, $5, $6, $7, now()) WHERE task_id = $1",
            task_id,
            *(max(getattr(used, name), getattr(counted, name)) for name in _USAGE),
        )
        return added

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
