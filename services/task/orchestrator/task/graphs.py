"""Sessions' task graphs kept in memory by the replica that writes them, checked by stamp.

For every batch the group commit reads the tasks it changes, their peers and whatever the
cascade reaches; from PostgreSQL that is a handful of round trips and every task's JSON parsed
again. A session this replica keeps writing needs none of it: its graph is loaded once, under
the session's lock; each batch works on copies of the tasks it touches and writes them in one
statement; the copies replace the cached tasks once the batch committed.

Whether a cached graph is current is decided under the session's lock by its stamp (migration
007: the id of the transaction that last wrote the session's tasks or dependencies, kept by
triggers, so no writer can leave it behind). The stamp of this replica's own last commit means
nobody else wrote since; any other and the graph is loaded again. A batch that rolls back
leaves the cache as it leaves the database: untouched.
"""

from __future__ import annotations

import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence

from orchestrator.api.events.v1 import events_pb2
from orchestrator.common.db import Conn
from orchestrator.task.domain import TERMINAL_STATUSES, Peer, Task, TaskStatus
from orchestrator.task.repository import TaskRepository, neighbourhood

# A session with more tasks is read from the database batch by batch, as before.
MAX_SESSION_TASKS = 20_000
# Beyond this many tasks in all, the sessions written longest ago are dropped.
MAX_CACHED_TASKS = 60_000
# A graph that served fewer batches than this before another writer made it stale was not worth
# its load: the session is then read from the database for a while (replicas writing the same
# session in turn), first for STANDOFF_SECONDS, doubling up to MAX_STANDOFF_SECONDS.
MIN_HITS = 8
# How many of its own recent stamps a graph remembers.
OWN_STAMPS = 16
STANDOFF_SECONDS = 1.0
MAX_STANDOFF_SECONDS = 60.0


class StaleGraphs(Exception):
    """A batch that took cached graphs unchecked found another writer's stamp on a session."""

    def __init__(self, session_ids: list[str]) -> None:
        super().__init__(f"sessions written elsewhere: {', '.join(session_ids)}")
        self.session_ids = session_ids


class Graph:
    """One session's tasks as last committed, with the index the cascade walks."""

    __slots__ = (
        "hits",
        "order",
        "ours",
        "ready",
        "roots",
        "session_id",
        "stamp",
        "successors",
        "tasks",
    )

    def __init__(
        self,
        session_id: str,
        stamp: int | None,
        tasks: Sequence[Task],
        order: Sequence[int] | None = None,
    ) -> None:
        self.session_id = session_id
        self.stamp = stamp
        self.tasks = {t.id: t for t in tasks}
        # Creation order (the tasks' `seq`): the order the database hands tasks out in.
        seqs = order if order is not None else range(len(tasks))
        self.order = dict(zip([t.id for t in tasks], seqs, strict=True))
        # The READY tasks, which the scheduler looks at.
        self.ready = {t.id for t in tasks if t.status is TaskStatus.READY}
        self.successors: dict[str, list[str]] = defaultdict(list)
        for task in tasks:
            for dependency in task.dependencies:
                self.successors[dependency.predecessor_id].append(task.id)
        self.roots = [t.id for t in tasks if t.parent_id is None]
        # Batches served since the load.
        self.hits = 0
        # The stamps of this replica's latest writes of the session, the one being committed
        # included (see `SessionGraphs.peek`).
        self.ours: deque[int] = deque(maxlen=OWN_STAMPS)

    @property
    def ended(self) -> bool:
        """Every top-level task ended: nothing will write the session in a while."""
        return all(self.tasks[r].status in TERMINAL_STATUSES for r in self.roots)


class SessionGraphs:
    """The cached graphs of one replica, least recently written first."""

    def __init__(
        self, max_session_tasks: int = MAX_SESSION_TASKS, max_tasks: int = MAX_CACHED_TASKS
    ) -> None:
        self.max_session_tasks = max_session_tasks
        self._max_tasks = max_tasks
        self._graphs: OrderedDict[str, Graph] = OrderedDict()
        self._session_of: dict[str, str] = {}
        # Sessions found too large, at the stamp they had then.
        self._too_big: dict[str, int | None] = {}
        # Sessions read from the database until a moment, and the period that set it.
        self._standoff: dict[str, tuple[float, float]] = {}
        self.loads = 0

    def __len__(self) -> int:
        return len(self._graphs)

    def held(self) -> list[str]:
        """The sessions whose graphs are cached (current or not)."""
        return list(self._graphs)

    def sessions_of(self, task_ids: Iterable[str]) -> list[str] | None:
        """The sessions of cached tasks (a task never changes session); None when one of
        `task_ids` is not cached."""
        found: set[str] = set()
        for ident in task_ids:
            session = self._session_of.get(ident)
            if session is None:
                return None
            found.add(session)
        return sorted(found)

    def peek(self, session_id: str, stamp: int | None) -> Graph | None:
        """The session's graph for a look without the session's lock (the scheduler's, at
        READY tasks), when `stamp`, read a moment ago, is one of this replica's own writes:
        the graph is then current, or a batch ahead or behind of what the database held as
        the stamp was read, which is all a read without the lock can promise anyway. Counts
        no hit, keeps the graph's place."""
        graph = self._graphs.get(session_id)
        if graph is None or (stamp != graph.stamp and stamp not in graph.ours):
            return None
        return graph

    def committing(self, view: GraphView) -> None:
        """The batch of `view` is about to commit: its stamp is one of this replica's own."""
        for session_id in view.written:
            graph = view.graphs.get(session_id)
            if graph is not None and view.stamp is not None:
                graph.ours.append(view.stamp)

    def current(self, session_id: str, stamp: int | None) -> Graph | None:
        graph = self._graphs.get(session_id)
        if graph is None or graph.stamp != stamp:
            return None
        graph.hits += 1
        self._graphs.move_to_end(session_id)
        return graph

    def trusted(self, session_ids: Sequence[str]) -> dict[str, Graph] | None:
        """The graphs of `session_ids`, to be used before their stamps are checked (the batch's
        write checks them, see `GraphView.flush`); None unless all are held."""
        graphs = {i: self._graphs.get(i) for i in session_ids}
        if any(g is None for g in graphs.values()):
            return None
        trusted = {i: g for i, g in graphs.items() if g is not None}
        for session_id, graph in trusted.items():
            graph.hits += 1
            self._graphs.move_to_end(session_id)
        return trusted

    def stale(self, session_id: str) -> None:
        """Another writer changed the session after this replica last loaded or wrote it: the
        graph goes. One that served fewer than MIN_HITS batches was not worth its load: the
        session then stands off (is read from the database) for a while, longer each time."""
        graph = self._graphs.get(session_id)
        if graph is None:
            return
        self.drop(session_id)
        if graph.hits < MIN_HITS:
            _, period = self._standoff.get(session_id, (0.0, STANDOFF_SECONDS / 2))
            period = min(period * 2, MAX_STANDOFF_SECONDS)
            self._standoff[session_id] = (time.monotonic() + period, period)
        else:
            self._standoff.pop(session_id, None)

    def worth_loading(self, session_id: str, stamp: int | None) -> bool:
        """Whether to load the session's graph now (its cached one, if any, is stale)."""
        if self.too_big(session_id, stamp):
            return False
        self.stale(session_id)
        until, _ = self._standoff.get(session_id, (0.0, 0.0))
        return time.monotonic() >= until

    def too_big(self, session_id: str, stamp: int | None) -> bool:
        return session_id in self._too_big and self._too_big[session_id] == stamp

    def mark_too_big(self, session_id: str, stamp: int | None) -> None:
        self.drop(session_id)
        self._too_big[session_id] = stamp

    def put(self, graph: Graph) -> None:
        self.drop(graph.session_id)
        self._too_big.pop(graph.session_id, None)
        self._graphs[graph.session_id] = graph
        self._session_of.update((i, graph.session_id) for i in graph.tasks)
        self.loads += 1
        total = sum(len(g.tasks) for g in self._graphs.values())
        while total > self._max_tasks and len(self._graphs) > 1:
            oldest = next(iter(self._graphs))
            total -= len(self._graphs[oldest].tasks)
            self.drop(oldest)

    def drop(self, session_id: str) -> None:
        graph = self._graphs.pop(session_id, None)
        if len(self._standoff) > self._max_tasks:  # sessions long gone
            self._standoff.clear()
        if graph is not None:
            for ident in graph.tasks:
                self._session_of.pop(ident, None)

    def committed(self, view: GraphView) -> None:
        """The batch of `view` committed: its writes become the cached state, stamped with its
        transaction; a session whose work all ended is let go."""
        for session_id, written in view.written.items():
            graph = self._graphs.get(session_id)
            if graph is None or graph is not view.graphs.get(session_id):
                continue  # dropped or reloaded meanwhile: the next batch loads it again
            for task in written:
                graph.tasks[task.id] = task
                if task.status is TaskStatus.READY:
                    graph.ready.add(task.id)
                else:
                    graph.ready.discard(task.id)
            graph.stamp = view.stamp
            if graph.ended:
                self.drop(session_id)


class GraphView:
    """A batch's reads and writes on cached graphs, as its transaction would see them.

    Tasks handed out to be changed are copies, kept for the batch (a second read returns the
    same copy, changes and all); `save` holds writes back until `flush` writes them all, each
    task once, with every event in the order saved."""

    def __init__(
        self,
        repo: TaskRepository,
        graphs: Mapping[str, Graph],
        stamp: int | None,
        *,
        unchecked: bool = False,
    ) -> None:
        self._repo = repo
        self.graphs = dict(graphs)
        # This transaction's id: the stamp its writes leave (known once `flush` wrote, when the
        # graphs were taken unchecked).
        self.stamp = stamp
        # The graphs' stamps were not checked under the lock: `flush` checks them.
        self._expected = {i: g.stamp for i, g in graphs.items()} if unchecked else None
        self._working: dict[str, Task] = {}
        self._pending: dict[str, tuple[Task, int]] = {}
        self._events: list[events_pb2.Event] = []
        # What `flush` wrote, by session: what `SessionGraphs.committing/committed` take.
        self.written: dict[str, list[Task]] = {}

    def _cached(self, ident: str) -> tuple[Graph, Task] | None:
        for graph in self.graphs.values():
            task = graph.tasks.get(ident)
            if task is not None:
                return graph, task
        return None

    def _current(self, ident: str) -> Task | None:
        """The task as the batch sees it, for reading only."""
        task = self._working.get(ident)
        if task is not None:
            return task
        found = self._cached(ident)
        return found[1] if found is not None else None

    def _order(self, ident: str) -> int:
        found = self._cached(ident)
        return found[0].order.get(ident, 0) if found is not None else 0

    def adopt(self, task: Task) -> None:
        """`task` (a copy restored after a refused change) is the batch's copy from now on."""
        self._working[task.id] = task

    async def get_many(self, conn: Conn, ids: Iterable[str]) -> list[Task]:
        found: list[Task] = []
        for ident in sorted(set(ids), key=self._order):
            task = self._working.get(ident)
            if task is None:
                cached = self._cached(ident)
                if cached is None:
                    continue
                task = self._working[ident] = cached[1].clone()
            found.append(task)
        return found

    async def peers(
        self, conn: Conn, ids: Iterable[str], children_of: Iterable[str] = ()
    ) -> dict[str, Peer]:
        wanted = list(ids)
        for parent_id in children_of:
            parent = self._current(parent_id)
            if parent is not None:
                wanted.extend(parent.child_ids)
        peers: dict[str, Peer] = {}
        for ident in wanted:
            task = self._current(ident)
            if task is not None:
                peers[ident] = Peer.of(task)
        return peers

    async def around(
        self, conn: Conn, frontier: Iterable[str], held: Mapping[str, Task] | None = None
    ) -> list[Task]:
        """As `TaskRepository.around`: the frontier, its dependants, children and parents
        (but for running parents with a subtask still open)."""
        ids = list(dict.fromkeys(frontier))
        known = {i: held[i] for i in ids if held is not None and i in held}
        missing = [i for i in ids if i not in known]
        if missing:
            known.update((t.id, t) for t in await self.get_many(conn, missing))
        dependants: set[str] = set()
        for ident in ids:
            cached = self._cached(ident)
            if cached is not None:
                dependants.update(cached[0].successors.get(ident, ()))
        return await neighbourhood(self, conn, known, dependants)

    async def running_with_open_children(self, conn: Conn, parent_ids: Sequence[str]) -> set[str]:
        busy: set[str] = set()
        for ident in parent_ids:
            parent = self._current(ident)
            if parent is None or parent.status is not TaskStatus.IN_PROGRESS:
                continue
            for child_id in parent.child_ids:
                child = self._current(child_id)
                if child is not None and child.status not in TERMINAL_STATUSES:
                    busy.add(ident)
                    break
        return busy

    async def save(
        self, conn: Conn, changed: Sequence[tuple[Task, int]], events: Sequence[events_pb2.Event]
    ) -> None:
        for task, read in changed:
            first = self._pending.get(task.id)
            self._pending[task.id] = (task, first[1] if first is not None else read)
        self._events.extend(events)

    async def flush(self, conn: Conn) -> None:
        """Writes every held-back change and event in one statement. With graphs taken
        unchecked, the statement first checks their stamps (even when nothing is to be written:
        refusals were decided on them too) and raises StaleGraphs, writing nothing, if another
        writer changed one of the sessions."""
        changed = list(self._pending.values())
        for task, _ in changed:
            self.written.setdefault(task.session_id, []).append(task)
        if self._expected is not None:
            own = await self._repo.save_if_stamped(conn, changed, self._events, self._expected)
            if own is None:
                raise StaleGraphs(list(self._expected))
            self.stamp = own
        elif changed:
            await self._repo.save(conn, changed, self._events)
        self._pending.clear()
        self._events = []
