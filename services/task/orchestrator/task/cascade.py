"""The scheduler's cascade: after a change, re-decide every task the change may affect, then
every task those decisions affect, until nothing moves.

A round loads the tasks around the ones that just changed (themselves, their dependants, their
children, their parents) with their peers in two queries, decides each with the pure rules of
`domain.scheduling`, and saves what changed with its events in one statement. It runs inside
the caller's transaction, which holds the session's lock, so what it reads is current.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from orchestrator.api.events.v1 import events_pb2
from orchestrator.common.db import Conn
from orchestrator.task.domain import Peer, Step, Task, TaskStatus, apply, decide
from orchestrator.task.repository import TaskRepository, TaskSource

# One task rarely moves more than twice in a round (resumed → ready, or ready → started →
# completed for a parent); more means the rules disagree with each other.
MAX_STEPS = 8
# A round per level of what a change reaches (a skip runs down a chain one task per round);
# far more than any real graph is deep, so hitting it means the rules oscillate.
MAX_ROUNDS = 100_000

Envelopes = Callable[[Task], list[events_pb2.Event]]


class Cascade:
    def __init__(self, repo: TaskRepository, envelopes: Envelopes) -> None:
        self._repo = repo
        self._envelopes = envelopes

    async def run(
        self,
        conn: Conn,
        frontier: Iterable[str],
        now: datetime,
        known: Mapping[str, Task] | None = None,
        source: TaskSource | None = None,
    ) -> dict[str, Task]:
        """Settles the tasks around `frontier`; returns every task it changed, by id. `known`
        holds tasks as the caller just wrote them in this transaction: the first round takes
        those from it rather than read them again. Reads and writes go through `source`, the
        database by default."""
        repo = source if source is not None else self._repo
        latest: dict[str, Task] = {}
        ids = set(frontier)
        held = dict(known or {})
        for _ in range(MAX_ROUNDS):
            if not ids:
                return latest
            # After the first round the frontier is what the last one changed, held in `latest`.
            candidates = await repo.around(conn, ids, held)
            held = latest
            peers, busy = await self._peers(conn, repo, candidates)
            changed: list[tuple[Task, int]] = []
            ids = set()
            for task in candidates:
                read, was = task.version, task.status
                self._settle(task, peers, now, rolls_up=task.id not in busy)
                if task.version != read:
                    changed.append((task, read))
                    if not _unseen(task, was):
                        ids.add(task.id)
            events = [e for task, _ in changed for e in self._envelopes(task)]
            await repo.save(conn, changed, events)
            latest.update((task.id, task) for task, _ in changed)
        raise RuntimeError(f"the scheduler cascade did not settle in {MAX_ROUNDS} rounds")

    async def _peers(
        self, conn: Conn, repo: TaskSource, candidates: list[Task]
    ) -> tuple[dict[str, Peer], set[str]]:
        """The peers the candidates' rules read, and the running parents that still have an
        open subtask (their subtasks are not loaded: they cannot roll up yet)."""
        own = {t.id for t in candidates}
        wanted = {d.predecessor_id for t in candidates for d in t.dependencies}
        wanted |= {t.parent_id for t in candidates if t.parent_id}
        parents = [t.id for t in candidates if t.is_parent]
        # An IN_PROGRESS parent moves only once all its subtasks ended: while one is open,
        # loading its (possibly thousands of) subtasks would only confirm that it keeps.
        running = [t.id for t in candidates if t.is_parent and t.status is TaskStatus.IN_PROGRESS]
        busy = await repo.running_with_open_children(conn, running) if running else set()
        parents = [p for p in parents if p not in busy]
        others = wanted - own
        peers = await repo.peers(conn, others, parents) if others or parents else {}
        peers.update((t.id, Peer.of(t)) for t in candidates)
        return peers, busy

    @staticmethod
    def _settle(task: Task, peers: dict[str, Peer], now: datetime, *, rolls_up: bool) -> None:
        for _ in range(MAX_STEPS):
            children = [peers[c] for c in task.child_ids if c in peers] if rolls_up else []
            verdict = decide(task, peers, children)
            if verdict.step is Step.KEEP:
                return
            apply(task, verdict, now, peers)
            peers[task.id] = Peer.of(task)
        raise RuntimeError(f"task {task.id} kept changing after {MAX_STEPS} scheduler steps")


# A subtask's rules read a parent's status; everyone else reads only whether a task started,
# completed or ended for good. So a leaf that merely became READY (or went back to PENDING)
# changes nothing another task decides on, and needs no further round.
_WAITING = frozenset({TaskStatus.PENDING, TaskStatus.READY})


def _unseen(task: Task, was: TaskStatus) -> bool:
    return not task.is_parent and was in _WAITING and task.status in _WAITING
