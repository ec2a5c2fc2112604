"""What the scheduler does to a task when other tasks change: the decisions are pure, so every
rule is tested without a database.

- Start dependencies (finish-to-start, start-to-start) decide READY: met when the predecessor
  completed (started), and the task's parent is READY or IN_PROGRESS. A READY task whose start
  dependencies stop being met goes back to PENDING; running tasks are left alone.
- A dependency that can never be met — its predecessor FAILED for good, or was CANCELLED or
  SKIPPED (before starting, for the start-event types) — SKIPS the task, whatever the type.
- A subtask of a CANCELLED parent is cancelled; of a SKIPPED or FAILED one, skipped.
- A finished task held BLOCKED by a finish dependency completes once that dependency is met.
- A parent rolls up from its subtasks: IN_PROGRESS when the first one starts; when every one
  has ended, COMPLETED if they all completed and FAILED otherwise (partial work is kept in the
  subtasks; the parent's error counts what did not complete); SKIPPED when they all ended
  without any having started.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from .dependency import Dependency
from .kinds import Hold
from .status import DEAD_STATUSES, SCHEDULABLE_STATUSES, TERMINAL_STATUSES, TaskStatus
from .task import Task

_S = TaskStatus


@dataclass(frozen=True, slots=True)
class Peer:
    """Another task as the scheduler sees it: a few columns, not the whole aggregate."""

    id: str
    title: str
    status: TaskStatus
    parent_id: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    session_id: str = ""

    @classmethod
    def of(cls, task: Task) -> Peer:
        return cls(
            task.id,
            task.title,
            task.status,
            task.parent_id,
            task.started_at,
            task.completed_at,
            task.session_id,
        )

    @property
    def label(self) -> str:
        return f'"{self.title}" [{self.id}]'


class Step(StrEnum):
    KEEP = "keep"
    READY = "ready"
    PENDING = "pending"
    SKIP = "skip"
    CANCEL = "cancel"
    RELEASE_HOLD = "release_hold"
    START = "start"
    FINISH = "finish"


@dataclass(frozen=True, slots=True)
class Verdict:
    step: Step
    reason: str = ""
    not_before: datetime | None = None


KEEP = Verdict(Step.KEEP)


def decide(task: Task, peers: Mapping[str, Peer], children: Iterable[Peer] = ()) -> Verdict:
    """The next step for `task`; apply it, update its peer, and ask again until KEEP."""
    verdict = _assess(task, peers)
    if verdict.step is Step.KEEP and task.is_parent:
        return roll_up(task, list(children))
    return verdict


def apply(task: Task, verdict: Verdict, now: datetime, peers: Mapping[str, Peer]) -> None:
    step, reason = verdict.step, verdict.reason
    if step is Step.READY:
        task.become_ready(now, verdict.not_before)
    elif step is Step.PENDING:
        task.become_pending(now, reason)
    elif step is Step.SKIP:
        task.skip(now, reason, actor="scheduler")
    elif step is Step.CANCEL:
        task.cancel(now, reason, actor="scheduler")
    elif step is Step.RELEASE_HOLD:
        task.release_hold(now)
    elif step is Step.START:
        task.start_rollup(now)
    elif step is Step.FINISH:
        task.finish_rollup(now, reason, finish_blockers(task, peers))


def _assess(task: Task, peers: Mapping[str, Peer]) -> Verdict:
    parent = peers.get(task.parent_id) if task.parent_id else None
    if parent is not None and parent.status is _S.CANCELLED and not task.is_terminal:
        return Verdict(Step.CANCEL, f"its parent {parent.label} was cancelled")
    skippable = task.status in (_S.PENDING, _S.READY, _S.PAUSED) or (
        task.status is _S.BLOCKED and task.hold is not Hold.APPROVAL
    )
    if skippable and (dead := _dead_end(task, peers, parent)):
        return Verdict(Step.SKIP, dead)
    if task.hold is Hold.FINISH:
        return KEEP if finish_blockers(task, peers) else Verdict(Step.RELEASE_HOLD)
    if task.status not in SCHEDULABLE_STATUSES:
        return KEEP
    waiting = start_blockers(task, peers, parent)
    if task.status is _S.PENDING and not waiting:
        return Verdict(Step.READY, not_before=_not_before(task.dependencies, peers))
    if task.status is _S.READY and waiting:
        return Verdict(Step.PENDING, "waits for " + "; ".join(waiting))
    return KEEP


def _dead_end(task: Task, peers: Mapping[str, Peer], parent: Peer | None) -> str:
    """Why the task can never run to completion, or "" while it still can."""
    if parent is not None and parent.status in (_S.SKIPPED, _S.FAILED):
        return f"its parent {parent.label} was {parent.status}"
    for dependency in task.dependencies:
        peer = peers.get(dependency.predecessor_id)
        if peer is None:
            continue
        if dependency.waits_for_finish and peer.status in DEAD_STATUSES:
            return f"dependency {peer.label} {_ended(peer.status)}"
        if not dependency.waits_for_finish and peer.status in DEAD_STATUSES and not peer.started_at:
            return f"dependency {peer.label} {_ended(peer.status)} without starting"
    return ""


def _ended(status: TaskStatus) -> str:
    return "failed" if status is _S.FAILED else f"was {status}"


def start_blockers(task: Task, peers: Mapping[str, Peer], parent: Peer | None) -> list[str]:
    """What the task still waits for before it may start, in words."""
    waiting = [
        _unmet(dependency, peers.get(dependency.predecessor_id))
        for dependency in task.dependencies
        if dependency.gates_start
    ]
    if task.parent_id and (parent is None or parent.status not in (_S.READY, _S.IN_PROGRESS)):
        status = parent.status if parent else "unknown"
        waiting.append(f"its parent {parent.label if parent else task.parent_id} ({status})")
    return [w for w in waiting if w]


def finish_blockers(task: Task, peers: Mapping[str, Peer]) -> list[str]:
    """The finish-to-finish and start-to-finish predecessors a finished task still waits for."""
    waiting = [
        _unmet(dependency, peers.get(dependency.predecessor_id))
        for dependency in task.dependencies
        if not dependency.gates_start
    ]
    return [w for w in waiting if w]


def _unmet(dependency: Dependency, peer: Peer | None) -> str:
    event = "finish" if dependency.waits_for_finish else "start"
    if peer is None:
        return f"task {dependency.predecessor_id} to {event}"
    met = peer.status is _S.COMPLETED if dependency.waits_for_finish else bool(peer.started_at)
    return "" if met else f"{peer.label} to {event}"


def _not_before(dependencies: Iterable[Dependency], peers: Mapping[str, Peer]) -> datetime | None:
    """When a positive lag lets the task start; negative lags (leads) are planning figures."""
    moments = []
    for dependency in dependencies:
        peer = peers.get(dependency.predecessor_id)
        if not dependency.gates_start or dependency.lag <= 0 or peer is None:
            continue
        event = peer.completed_at if dependency.waits_for_finish else peer.started_at
        if event is not None:
            moments.append(event + timedelta(hours=dependency.lag))
    return max(moments, default=None)


def roll_up(parent: Task, children: list[Peer]) -> Verdict:
    if not children:
        return KEEP
    started = any(c.started_at for c in children)
    ended = all(c.status in TERMINAL_STATUSES for c in children)
    if parent.status is _S.READY and started:
        return Verdict(Step.START)
    if parent.status is _S.IN_PROGRESS and ended:
        return Verdict(Step.FINISH, shortfall(children))
    if parent.status in SCHEDULABLE_STATUSES and ended and not started:
        return Verdict(Step.SKIP, f"none of its {len(children)} subtasks ran")
    return KEEP


def shortfall(children: list[Peer]) -> str:
    """ "" when every subtask completed; otherwise what did not, for the parent's error."""
    missing = [c for c in children if c.status is not _S.COMPLETED]
    if not missing:
        return ""
    counts: dict[str, int] = {}
    for child in missing:
        counts[child.status] = counts.get(child.status, 0) + 1
    detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    done = len(children) - len(missing)
    return f"partial: {done} of {len(children)} subtasks completed ({detail})"
