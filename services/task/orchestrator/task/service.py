"""Task use cases. Each write takes its session's lock, loads, asks the domain, saves the
change with its events and lets the cascade settle what the change affects, all in one
transaction; reads take no lock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg

from orchestrator.common.db import Conn
from orchestrator.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    StaleVersion,
)
from orchestrator.task.cascade import Cascade
from orchestrator.task.domain import (
    LEASED_STATUSES,
    DecompositionTemplate,
    Dependency,
    DependencyType,
    GraphTask,
    Peer,
    Schedule,
    Task,
    TaskNetwork,
    apply,
    decide,
    decompose,
    parse_uuid,
    schedule,
    validate_lag,
    validate_max_depth,
    validate_pair,
)
from orchestrator.task.domain.links import check_edge, check_parent, check_predecessor
from orchestrator.task.gc_pause import cyclic_gc_paused
from orchestrator.task.graphs import SessionGraphs
from orchestrator.task.group_commit import Change, GroupCommit
from orchestrator.task.repository import Page, TaskFilter, TaskRepository, TaskSource, page_size
from orchestrator.task.routing import Needs, NoEligibleAgent, Ranker, choose_agent
from orchestrator.task.wire import envelopes

T = TypeVar("T")
R = TypeVar("R")
Clock = Callable[[], datetime]
# Turns a scheduled graph into what the caller returns (the servicer: a GetGraphResponse).
Render = Callable[[TaskNetwork, Schedule, datetime], R]
# An action on a loaded task: gets the time and the peers it asked for (else empty).
Action = Callable[[Task, datetime, Mapping[str, Peer]], T]


# Tasks one CreateTasks call may plan.
MAX_BATCH_CREATE = 5000
# Session statuses no transition leaves (SPEC: terminal), as the session events name them, and
# a deleted session (it never runs again).
ENDED_SESSIONS = frozenset(
    {"completed", "partially_completed", "stopped", "cancelled", "orphaned", "deleted"}
)


def utc_now() -> datetime:
    return datetime.now(UTC)


class TaskService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        ranker: Ranker,
        repo: TaskRepository | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._pool = pool
        self._ranker = ranker
        self._repo = repo or TaskRepository()
        self._clock = clock
        self._cascade = Cascade(self._repo, envelopes)
        self._listeners: list[Callable[[Iterable[Task]], None]] = []
        self._writer = GroupCommit(pool, self._repo, self.settle, clock, committed=self._tell)

    @property
    def graphs(self) -> SessionGraphs:
        """The session graphs this replica holds (see `graphs`)."""
        return self._writer.graphs

    def on_committed(self, listener: Callable[[Iterable[Task]], None]) -> None:
        """Calls `listener` with the tasks a change wrote, once it committed."""
        self._listeners.append(listener)

    def _tell(self, tasks: Iterable[Task]) -> None:
        written = list(tasks)
        for listener in self._listeners:
            listener(written)

    def now(self) -> datetime:
        return self._clock()

    @contextlib.asynccontextmanager
    async def locked(self, session_id: str) -> AsyncIterator[Conn]:
        """A transaction holding the session's lock: every write of its tasks runs in one."""
        async with self._pool.acquire() as conn, conn.transaction():
            await self._repo.lock_session(conn, session_id)
            yield conn

    async def settle(
        self,
        conn: Conn,
        changed: list[tuple[Task, int]],
        now: datetime,
        quiet: Collection[str] = (),
        source: TaskSource | None = None,
        also: Iterable[str] = (),
    ) -> dict[str, Task]:
        """Saves `changed` with their events, then cascades from them but the `quiet` ones
        (changes no rule of another task reads) and from `also` (tasks written already);
        returns the latest state of every task that changed. Reads and writes go through
        `source`, the database by default."""
        source = source if source is not None else self._repo
        await source.save(conn, changed, [e for t, _ in changed for e in envelopes(t)])
        latest = {t.id: t for t, _ in changed}
        frontier = [i for i in latest if i not in quiet]
        if frontier or also:
            settled = await self._cascade.run(conn, [*frontier, *also], now, latest, source)
            latest.update(settled)
        return latest

    async def create(self, *, session_id: str, **fields: Any) -> Task:
        """A PENDING task, READY at once when its dependencies allow it. A repeated create
        with the same id and content returns the stored task."""
        now = self._clock()
        task = Task.create(now=now, session_id=parse_uuid(session_id, "session_id"), **fields)
        preds = [d.predecessor_id for d in task.dependencies]
        async with self.locked(task.session_id) as conn:
            peers = await self._repo.peers(conn, [task.id, *preds])
            if task.id in peers:
                return self._same_create_or_conflict(await self._repo.get(conn, task.id), task)
            await self._check_open(conn, task.session_id)
            parent = await self._parent_of(conn, task)
            if parent is not None:
                peers[parent.id] = Peer.of(parent)
            for pred in preds:
                check_predecessor(task.session_id, pred, peers, "depends_on")
            if parent is not None and preds:
                await self._check_new_edges(conn, task)
            # A new task has no dependants yet: deciding it alone settles everything.
            verdict = decide(task, peers)
            apply(task, verdict, now, peers)
            await self._repo.insert(conn, [task], envelopes(task))
        self._tell([task])
        return task

    async def create_many(self, session_id: str, specs: Sequence[Mapping[str, Any]]) -> list[Task]:
        """Tasks of one session planned in one transaction, all or none, in the order given;
        a task may name an earlier one of `specs` as its parent or predecessor. Tasks that
        exist already with the same content are returned as stored."""
        if not specs:
            raise InvalidArgument("tasks: give at least one task", field="tasks")
        if len(specs) > MAX_BATCH_CREATE:
            raise InvalidArgument(
                f"tasks: at most {MAX_BATCH_CREATE} in one request", field="tasks"
            )
        now = self._clock()
        sid = parse_uuid(session_id, "session_id")
        wanted: list[Task] = []
        for number, fields in enumerate(specs):
            try:
                wanted.append(Task.create(now=now, session_id=sid, **fields))
            except InvalidArgument as exc:
                raise InvalidArgument(f"tasks[{number}]: {exc.message}", field="tasks") from exc
        ids = [t.id for t in wanted]
        if len(set(ids)) != len(ids):
            raise InvalidArgument("tasks: the same task_id appears twice", field="tasks")
        async with self.locked(sid) as conn:
            stored = {t.id: t for t in await self._repo.get_many(conn, ids)}
            for task in wanted:
                if task.id in stored:
                    self._same_create_or_conflict(stored[task.id], task)
            fresh = [t for t in wanted if t.id not in stored]
            if fresh:
                await self._check_open(conn, sid)
            named = {d.predecessor_id for t in fresh for d in t.dependencies}
            named |= {t.parent_id for t in fresh if t.parent_id}
            known = {t.id: t for t in await self._repo.get_many(conn, named - set(ids))}
            known.update(stored)
            peers = {i: Peer.of(t) for i, t in known.items()}
            for task in fresh:
                parent = known.get(task.parent_id) if task.parent_id else None
                check_parent(task, parent)
                if parent is not None:
                    task.depth = parent.depth + 1
                    peers[parent.id] = Peer.of(parent)
                for dependency in task.dependencies:
                    check_predecessor(sid, dependency.predecessor_id, peers, "depends_on")
                apply(task, decide(task, peers), now, peers)
                known[task.id] = task
                peers[task.id] = Peer.of(task)
            if any(t.dependencies for t in fresh):
                await self._check_planned_edges(conn, sid, fresh)
            await self._repo.insert(conn, fresh, [e for t in fresh for e in envelopes(t)])
            # As stored: parents now list their subtasks.
            latest = {t.id: t for t in await self._repo.get_many(conn, ids)}
        self._tell(fresh)
        return [latest[t.id] for t in wanted]

    async def _check_open(self, conn: Conn, session_id: str) -> None:
        """A session that has ended for good (or was deleted) takes no new tasks: nothing would
        ever run them. A failed or timed-out one still does, since a retry starts it again."""
        status = await self._repo.session_status(conn, session_id)
        if status in ENDED_SESSIONS:
            raise FailedPrecondition(
                f"session {session_id} is {status}; an ended session takes no new tasks"
            )

    async def _check_planned_edges(self, conn: Conn, session_id: str, fresh: list[Task]) -> None:
        """No dependency of the planned tasks may join a task to its lineage or close a cycle
        (through one another, the stored graph, or a parent's finish)."""
        rows, edges = await self._repo.graph(conn, session_id)
        planned = [
            GraphTask(
                id=t.id,
                parent_id=t.parent_id,
                title=t.title,
                status=t.status,
                priority=t.priority,
                expected_hours=0.0,
                sigma_hours=0.0,
            )
            for t in fresh
        ]
        new_edges = [d for t in fresh for d in t.dependencies]
        network = TaskNetwork([*rows, *planned], [*edges, *new_edges])
        for dependency in new_edges:
            check_edge(network, dependency, "depends_on")

    async def _parent_of(self, conn: Conn, task: Task) -> Task | None:
        if task.parent_id is None:
            return None
        found = await self._repo.get_many(conn, [task.parent_id])
        parent = found[0] if found else None
        check_parent(task, parent)
        assert parent is not None
        task.depth = parent.depth + 1
        return parent

    async def _check_new_edges(self, conn: Conn, task: Task) -> None:
        """A subtask's dependencies can close a cycle through its parent's finish."""
        rows, edges = await self._repo.graph(conn, task.session_id)
        me = GraphTask(
            id=task.id,
            parent_id=task.parent_id,
            title=task.title,
            status=task.status,
            priority=task.priority,
            expected_hours=0.0,
            sigma_hours=0.0,
        )
        network = TaskNetwork([*rows, me], edges)
        for dependency in task.dependencies:
            check_edge(network, dependency, "depends_on")

    @staticmethod
    def _same_create_or_conflict(existing: Task, wanted: Task) -> Task:
        same = (existing.session_id, existing.parent_id, existing.title, existing.description) == (
            wanted.session_id,
            wanted.parent_id,
            wanted.title,
            wanted.description,
        )
        if not same:
            raise AlreadyExists(f"task {wanted.id} already exists with other content")
        return existing

    async def get(self, task_id: str) -> Task:
        ident = parse_uuid(task_id, "task_id")
        async with self._pool.acquire() as conn:
            return await self._repo.get(conn, ident)

    async def list_tasks(self, f: TaskFilter, size: int, token: str) -> Page:
        async with self._pool.acquire() as conn:
            return await self._repo.page(conn, f, page_size(size), token)

    async def session_tasks(self, session_id: str, ids: list[str]) -> list[Task]:
        async with self._pool.acquire() as conn:
            return await self._repo.of_session(conn, session_id, ids)

    async def change(
        self,
        task_id: str,
        expected_version: int | None,
        action: Action[T],
        *,
        with_peers: bool = False,
        always_save: bool = False,
        quiet: bool = False,
    ) -> tuple[Task, T]:
        """Loads under the session's lock, checks the expected version, applies `action`,
        saves with its events and cascades. `with_peers` hands the action the states of the
        task's predecessors; `always_save` writes a change that bumps no version (a lease);
        `quiet` skips the cascade for a change no other task's rules read. Changes that arrive
        together share one transaction (group commit)."""
        ident = parse_uuid(task_id, "task_id")
        change = Change(ident, expected_version, action, with_peers, always_save, quiet)
        task, outcome = await self._writer.submit(change)
        return task, outcome

    async def _load(self, conn: Conn, ident: str, expected_version: int | None) -> Task:
        """The task, under its session's lock, at the version the caller expects."""
        await self._repo.lock_session_of(conn, ident)
        task = await self._repo.get(conn, ident)
        if expected_version is not None and expected_version != task.version:
            raise StaleVersion("task", ident, expected_version, task.version)
        return task

    async def decompose(
        self,
        task_id: str,
        expected_version: int | None,
        template: DecompositionTemplate,
        max_depth: int,
        actor: str,
    ) -> tuple[Task, list[Task], list[Dependency]]:
        """The decomposed task and its subtasks (parents first) as stored after the cascade."""
        ident = parse_uuid(task_id, "task_id")
        depth = validate_max_depth(max_depth)
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            task = await self._load(conn, ident, expected_version)
            read = task.version
            plan = decompose(task, template, depth, now, actor=actor)
            subtasks = [s.id for s in plan.subtasks]
            await self._repo.insert(
                conn, plan.subtasks, [e for s in plan.subtasks for e in envelopes(s)]
            )
            await self.settle(conn, [(task, read)], now, also=subtasks)
            stored = {t.id: t for t in await self._repo.get_many(conn, [ident, *subtasks])}
        return stored[ident], [stored[i] for i in subtasks], plan.dependencies

    async def add_dependency(
        self,
        task_id: str,
        expected_version: int | None,
        depends_on: str,
        kind: DependencyType,
        lag_hours: float | None,
        actor: str,
    ) -> tuple[Task, Dependency]:
        field = "depends_on_task_id"
        ident, pred = parse_uuid(task_id, "task_id"), parse_uuid(depends_on, field)
        validate_pair(ident, pred, field)
        lag = validate_lag(lag_hours)
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            task = await self._load(conn, ident, expected_version)
            existing = next((d for d in task.dependencies if d.predecessor_id == pred), None)
            if existing is not None:
                return task, self._same_edge_or_conflict(existing, kind, lag)
            check_predecessor(task.session_id, pred, await self._repo.peers(conn, [pred]), field)
            dependency = Dependency(pred, ident, kind, lag, now)
            check_edge(
                TaskNetwork(*await self._repo.graph(conn, task.session_id)), dependency, field
            )
            read = task.version
            task.add_dependency(now, dependency, actor=actor)
            await self._repo.insert_dependency(conn, task.session_id, dependency)
            task = (await self.settle(conn, [(task, read)], now))[ident]
        return task, dependency

    @staticmethod
    def _same_edge_or_conflict(
        existing: Dependency, kind: DependencyType, lag: float | None
    ) -> Dependency:
        """Adding the same edge again changes nothing; a different one on the pair conflicts."""
        if (existing.dependency_type, existing.lag_hours) == (kind, lag):
            return existing
        raise AlreadyExists(
            f"task {existing.successor_id} already depends on task {existing.predecessor_id} "
            f"({existing.dependency_type}); remove that dependency first"
        )

    async def remove_dependency(
        self, task_id: str, expected_version: int | None, depends_on: str, actor: str
    ) -> Task:
        ident = parse_uuid(task_id, "task_id")
        pred = parse_uuid(depends_on, "depends_on_task_id")
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            task = await self._load(conn, ident, expected_version)
            read = task.version
            task.remove_dependency(now, pred, actor=actor)
            await self._repo.delete_dependency(conn, ident, pred)
            task = (await self.settle(conn, [(task, read)], now))[ident]
        return task

    async def route(self, task_id: str, expected_version: int | None = None) -> str:
        """The agent routing picks for the task: the best-ranked one with a free slot by this
        service's count of leases. NoEligibleAgent (the task then says why it waits) when none
        fits or all that fit are full."""
        task = await self.get(task_id)
        if expected_version is not None and expected_version != task.version:
            raise StaleVersion("task", task.id, expected_version, task.version)
        task.ensure_assignable(self._clock())
        async with self._pool.acquire() as conn:
            loads = await self._repo.agent_loads(conn)
        try:
            # Asked on purpose (AssignTask without an agent): a fresh ranking, not the cache.
            agent_id = await self.choose_agent(Needs.of(task), loads, fresh=True)
            if agent_id is None:
                raise NoEligibleAgent("every eligible agent is at capacity")
        except NoEligibleAgent as refusal:
            await self.note_unroutable(task.id, refusal.message)
            raise NoEligibleAgent(f"no agent can take task {task.id}: {refusal.message}") from None
        return agent_id

    async def choose_agent(
        self, needs: Needs, loads: Mapping[str, int], *, fresh: bool = False
    ) -> str | None:
        """See `routing.choose_agent`: None when every eligible agent is full."""
        return await choose_agent(self._ranker, needs, loads, fresh=fresh)

    async def agent_loads(self, conn: Conn) -> dict[str, int]:
        """Tasks each agent holds, assigned or running."""
        return await self._repo.agent_loads(conn)

    def forget_rankings(self) -> None:
        """The fleet changed (an agent joined, drained or went offline): rank afresh."""
        self._ranker.forget()

    async def note_unroutable(self, task_id: str, reason: str) -> None:
        """A READY task no agent can take says why it waits (written only when it changed)."""
        await self.change(
            task_id, None, lambda t, now, _: t.note_unroutable(now, reason), quiet=True
        )

    async def assign(
        self,
        task_id: str,
        expected_version: int | None,
        agent_id: str,
        lease_seconds: int,
        actor: str,
    ) -> Task:
        """READY → ASSIGNED to `agent_id`, or to the agent the router picks. The route is asked
        outside the transaction; when no agent fits, the task stays READY and says why."""
        if not agent_id:
            agent_id = await self.route(task_id, expected_version)
        task, _ = await self.change(
            task_id,
            expected_version,
            lambda t, now, _: t.assign(now, agent_id, lease_seconds, actor=actor),
            # A leaf assigned is still not started: no rule of another task reads the change.
            quiet=True,
        )
        return task

    async def graph(self, session_id: str, render: Render[R]) -> R:
        """The session's graph, from two queries in one snapshot, scheduled and handed to
        `render` off the event loop so other calls keep being served meanwhile."""
        ident = parse_uuid(session_id, "session_id")
        with cyclic_gc_paused():
            async with (
                self._pool.acquire() as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                rows, edges = await self._repo.graph(conn, ident)
            now = self._clock()

            def compute() -> R:
                network = TaskNetwork(rows, edges)
                return render(network, schedule(network), now)

            return await asyncio.to_thread(compute)

    async def reap_expired_leases(
        self, limit: int = 100, may_reap: Callable[[], bool] = lambda: True
    ) -> int:
        """Sends tasks whose lease ran out back to READY, once the leases could be read and
        `may_reap()` agrees (see `reaper.Sight`). Safe on every replica at once: each task is
        re-read under its session's lock and only requeued if still expired."""
        now = self._clock()
        async with self._pool.acquire() as conn:
            ids = await self._repo.expired_leases(conn, now, limit)
        if not may_reap():
            return 0
        reaped = 0
        for ident in ids:
            _, expired = await self.change(ident, None, _expire)
            reaped += expired
        return reaped


def _expire(task: Task, now: datetime, _: Mapping[str, Peer]) -> bool:
    expires = task.lease_expires_at
    if task.status not in LEASED_STATUSES or expires is None or expires > now:
        return False
    task.release(now, 0, expired=True, actor="lease-reaper")
    return True
