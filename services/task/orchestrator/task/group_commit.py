"""Group commit: single-task changes that arrive together are written in one transaction.

Workers report starts and completions, the scheduler assigns, leases are renewed — each is a
change to one task, and each alone would cost a transaction with its round trips and a commit.
The writer runs one batch at a time; whatever queued while a batch was being written forms
the next one. A batch takes the locks of every session it touches (in one sorted order, so two
writers never deadlock), loads its tasks in one query, applies each change in arrival order
with the domain's rules, saves what changed with its events in one statement and lets the
cascade settle from all of them at once, then commits.

Sessions this replica keeps writing are read from memory (`graphs`): the batch then costs three
round trips — BEGIN with the locks, one statement that checks the graphs' stamps and writes every
change and event, COMMIT. A graph found stale is loaded again under the lock (or, when replicas
write the session in turn, the batch reads the database as above).

Each change keeps its own outcome: a refusal (wrong state, stale version, stale fencing token)
fails only its caller, and the domain refuses before it modifies anything. When a batch
fails as a whole (the database refused it), each of its changes is retried alone, so one bad
change cannot take the others down with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from orchestrator.common.db import Conn
from orchestrator.common.errors import NotFound, StaleVersion
from orchestrator.task.domain import Peer, Task
from orchestrator.task.graphs import Graph, GraphView, SessionGraphs, StaleGraphs
from orchestrator.task.repository import TaskRepository, TaskSource

log = logging.getLogger(__name__)

MAX_BATCH = 256

Action = Callable[[Task, datetime, Mapping[str, Peer]], Any]
# Saves changed tasks with their events and cascades from all but the quiet ones (their ids),
# reading and writing through the source; returns the latest state of each.
Settle = Callable[
    [Conn, list[tuple[Task, int]], datetime, set[str], TaskSource], Awaitable[dict[str, Task]]
]
_BEGIN = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan"


@dataclass
class Change:
    task_id: str
    expected_version: int | None
    action: Action
    with_peers: bool = False
    always_save: bool = False
    # The change moves nothing another task's rules read (a leaf assigned, a routing note):
    # it is saved without a cascade from it.
    quiet: bool = False
    done: asyncio.Future[tuple[Task, Any]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def resolve(self, value: tuple[Task, Any]) -> None:
        if not self.done.done():
            self.done.set_result(value)

    def refuse(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


class GroupCommit:
    def __init__(
        self,
        pool: asyncpg.Pool,
        repo: TaskRepository,
        settle: Settle,
        clock: Callable[[], datetime],
        max_batch: int = MAX_BATCH,
        committed: Callable[[Iterable[Task]], None] = lambda tasks: None,
        graphs: SessionGraphs | None = None,
    ) -> None:
        self._pool = pool
        self._repo = repo
        self._settle = settle
        self._clock = clock
        self._max_batch = max_batch
        self._committed = committed
        self.graphs = graphs if graphs is not None else SessionGraphs()
        self._queue: list[Change] = []
        self._writing: asyncio.Task[None] | None = None
        self.batches = 0
        self.changes = 0

    async def submit(self, change: Change) -> tuple[Task, Any]:
        self._queue.append(change)
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._drain(), name="task-group-commit")
        return await change.done

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            try:
                await self._write(batch)
            except Exception as exc:
                if len(batch) == 1:
                    batch[0].refuse(exc)
                    continue
                log.warning("a batch of %d task changes failed (%s); each retried alone",
                            len(batch), exc)  # fmt: skip
                for change in batch:
                    try:
                        await self._write([change])
                    except Exception as alone:
                        change.refuse(alone)
            except BaseException as exc:  # cancelled: nobody waits in vain
                for change in batch:
                    change.refuse(exc)
                raise

    async def _write(self, batch: Sequence[Change]) -> None:
        now = self._clock()
        ids = list(dict.fromkeys(c.task_id for c in batch))
        outcomes: list[tuple[Change, Any]] = []
        # Told only after the commit: were the batch rolled back, each change runs again.
        refusals: list[tuple[Change, Exception]] = []
        view: GraphView | None = None
        async with self._pool.acquire() as conn:
            # Every statement below looks rows up by key from arrays (`= ANY($1)`, `unnest`),
            # which PostgreSQL would otherwise plan anew on each call (custom plans); their
            # generic plans, index lookups per element, are as good and cost nothing to reuse.
            # Said with BEGIN in one round trip (so the transaction is ours to end, below), and
            # so are the session locks when the cache knows the sessions.
            sessions = self.graphs.sessions_of(ids)
            locks = f"; {self._repo.lock_sql(sessions)}" if sessions else ""
            await conn.execute(_BEGIN + locks)
            try:
                if sessions is not None and (trusted := self.graphs.trusted(sessions)):
                    # Every task known, every graph held: trusted until the write checks them.
                    view = GraphView(self._repo, trusted, None, unchecked=True)
                else:
                    if sessions is None:
                        sessions = await self._repo.lock_sessions_of(conn, ids)
                    view = await self._view(conn, sessions)
                source: TaskSource = view if view is not None else self._repo
                latest, tasks = await self._apply(conn, source, batch, now, ids, outcomes, refusals)
                if view is not None:
                    await view.flush(conn)
                    self.graphs.committing(view)
            except StaleGraphs as stale:
                with contextlib.suppress(Exception):
                    await conn.execute("ROLLBACK")
                for session_id in stale.session_ids:
                    self.graphs.stale(session_id)
                retry = True
            except BaseException:
                with contextlib.suppress(Exception):
                    await conn.execute("ROLLBACK")
                raise
            else:
                await conn.execute("COMMIT")
                retry = False
        if retry:
            # Nothing was written and nobody told: the batch again, its graphs checked first.
            await self._write(batch)
            return
        if view is not None:
            self.graphs.committed(view)
        self.batches += 1
        self.changes += len(batch)
        if latest:
            self._committed(latest.values())
        for change, outcome in outcomes:
            change.resolve((latest.get(change.task_id, tasks[change.task_id]), outcome))
        for change, refusal in refusals:
            change.refuse(refusal)

    async def _view(self, conn: Conn, sessions: Sequence[str]) -> GraphView | None:
        """The batch's view of the cached graphs of `sessions`, each checked against its stamp
        and loaded again when stale; None when one is too large to keep (then the batch reads
        the database)."""
        if not sessions:
            return None
        stamps, own = await self._repo.stamps(conn, sessions)
        graphs: dict[str, Graph] = {}
        for session_id in sessions:
            stamp = stamps.get(session_id)
            graph = self.graphs.current(session_id, stamp)
            if graph is None:
                if not self.graphs.worth_loading(session_id, stamp):
                    return None
                limit = self.graphs.max_session_tasks
                whole = await self._repo.whole_session(conn, session_id, limit)
                if whole is None:
                    self.graphs.mark_too_big(session_id, stamp)
                    return None
                graph = Graph(session_id, stamp, *whole)
                self.graphs.put(graph)
            graphs[session_id] = graph
        return GraphView(self._repo, graphs, own)

    async def _apply(
        self,
        conn: Conn,
        source: TaskSource,
        batch: Sequence[Change],
        now: datetime,
        ids: list[str],
        outcomes: list[tuple[Change, Any]],
        refusals: list[tuple[Change, Exception]],
    ) -> tuple[dict[str, Task], dict[str, Task]]:
        """Applies the batch inside the caller's transaction: the latest state of each task
        written, and every task the batch named as loaded (by id)."""
        tasks = {t.id: t for t in await source.get_many(conn, ids)}
        peers = await self._peers(conn, source, batch, tasks)
        repeated = {i for i, n in Counter(c.task_id for c in batch).items() if n > 1}
        read = {i: t.version for i, t in tasks.items()}
        saved_always: set[str] = set()
        for change in batch:
            task = tasks.get(change.task_id)
            if task is None:
                refusals.append((change, NotFound(f"task {change.task_id} does not exist")))
                continue
            expected = change.expected_version
            if expected is not None and expected != task.version:
                stale = StaleVersion("task", task.id, expected, task.version)
                refusals.append((change, stale))
                continue
            # The domain refuses before it changes anything; a task changed twice in one
            # batch is still copied, so a refusal cannot leave half an action behind.
            backup = copy.deepcopy(task) if task.id in repeated else None
            try:
                outcome = change.action(task, now, peers if change.with_peers else {})
            except Exception as exc:
                if backup is not None:
                    tasks[task.id] = backup
                    if isinstance(source, GraphView):
                        source.adopt(backup)
                refusals.append((change, exc))
                continue
            peers[task.id] = Peer.of(task)
            if change.always_save:
                saved_always.add(task.id)
            outcomes.append((change, outcome))
        changed = [(t, read[i]) for i, t in tasks.items() if t.version != read[i]]
        loud = {c.task_id for c, _ in outcomes if not c.quiet}
        quiet = {t.id for t, _ in changed if t.id not in loud}
        latest = await self._settle(conn, changed, now, quiet, source) if changed else {}
        kept = [(tasks[i], read[i]) for i in saved_always if i not in latest]
        if kept:
            await source.save(conn, kept, [])
        return latest, tasks

    async def _peers(
        self, conn: Conn, source: TaskSource, batch: Sequence[Change], tasks: Mapping[str, Task]
    ) -> dict[str, Peer]:
        """The predecessors of the tasks whose changes ask for them, as they stand now."""
        wanted = {
            d.predecessor_id
            for c in batch
            if c.with_peers and c.task_id in tasks
            for d in tasks[c.task_id].dependencies
        }
        found = await source.peers(conn, wanted - set(tasks)) if wanted else {}
        found.update((i, Peer.of(t)) for i, t in tasks.items() if i in wanted)
        return found
