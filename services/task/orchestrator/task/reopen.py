"""Reopening a retried session's work: every task that ended without completing (failed,
cancelled, skipped, and so the parents that failed because of them) goes back to PENDING with
its attempts reset; completed tasks stay completed and never run again. The scheduler's cascade
then makes READY what may run.

One transaction under the session's lock: the reopened tasks, their events and what the cascade
changes are written together or not at all. Reopening all of them at once matters: one reopened
alone would be skipped again at once for a predecessor or parent that is still dead.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from orchestrator.common.db import Conn
from orchestrator.task.cascade import Cascade
from orchestrator.task.domain import DEAD_STATUSES, Task
from orchestrator.task.repository import TaskRepository
from orchestrator.task.wire import envelopes


def reopen_tasks(
    tasks: Iterable[Task], now: datetime, reason: str, actor: str
) -> list[tuple[Task, int]]:
    """Reopens the tasks that ended without completing; returns each with the version it was
    read at, in the order given."""
    reopened = []
    for task in tasks:
        if task.status in DEAD_STATUSES:
            read = task.version
            task.reopen(now, reason, actor=actor)
            reopened.append((task, read))
    return reopened


async def reopen_session(
    conn: Conn,
    session_id: str,
    now: datetime,
    reason: str,
    *,
    actor: str,
    repo: TaskRepository | None = None,
) -> dict[str, Task]:
    """Reopens the session's ended work inside the caller's transaction on `conn`; returns
    every task that changed (reopened, or moved by the cascade after), by id."""
    repo = repo or TaskRepository()
    await repo.lock_session(conn, session_id)
    reopened = reopen_tasks(await repo.of_session(conn, session_id), now, reason, actor)
    if not reopened:
        return {}
    await repo.save(conn, reopened, [e for task, _ in reopened for e in envelopes(task)])
    latest = {task.id: task for task, _ in reopened}
    latest.update(await Cascade(repo, envelopes).run(conn, list(latest), now))
    return latest
