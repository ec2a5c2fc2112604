"""A session's tasks as one precedence network in networkx, built from rows loaded at once.

Leaf tasks are single nodes. A parent (a decomposed task) becomes two zero-length milestones,
`<id>:start` before each of its subtasks and `<id>:finish` after them, so a dependency on or of
a parent applies to its whole subtree without copying edges. A dependency joins the events it
names: finish-to-start links the predecessor's finish to the successor's start, and so on; for
a leaf both events are the same node. Every dependency type counts when looking for cycles.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx  # type: ignore[import-untyped, unused-ignore]

from .dependency import Dependency
from .kinds import DependencyType, Hold, TaskPriority
from .status import TERMINAL_STATUSES, TaskStatus

START, FINISH = ":start", ":finish"


@dataclass(frozen=True, slots=True)
class GraphTask:
    """What the graph needs of a task: a few columns, not the whole aggregate."""

    id: str
    parent_id: str | None
    title: str
    status: TaskStatus
    priority: TaskPriority
    expected_hours: float
    sigma_hours: float
    # Creation order: the last tie-break, so equal inputs always give the same answer.
    order: int = 0
    hold: Hold = Hold.NONE
    assigned_agent_id: str = ""

    @property
    def finished(self) -> bool:
        """Its work is done or will never be: it takes no more time in the schedule."""
        return self.status in TERMINAL_STATUSES or self.hold in (Hold.APPROVAL, Hold.FINISH)


@dataclass(frozen=True, slots=True)
class Link:
    """A precedence constraint between two network nodes: `to` event >= `from` event + lag."""

    from_finish: bool
    to_finish: bool
    lag: float


_HIERARCHY_IN = Link(from_finish=False, to_finish=False, lag=0.0)
_HIERARCHY_OUT = Link(from_finish=True, to_finish=True, lag=0.0)


class TaskNetwork:
    def __init__(self, tasks: Iterable[GraphTask], dependencies: Iterable[Dependency]) -> None:
        self.tasks: dict[str, GraphTask] = {t.id: t for t in tasks}
        self.dependencies: list[Dependency] = list(dependencies)
        self.parents: frozenset[str] = frozenset(
            t.parent_id for t in self.tasks.values() if t.parent_id in self.tasks
        )
        # Every edge as (from node, to node, link): the graph is built from these, and the
        # critical path walks them as plain lists (quicker than through networkx's views).
        self.links: list[tuple[str, str, Link]] = [*self._hierarchy(), *self._dependencies()]
        self.graph = nx.DiGraph()
        self.graph.add_nodes_from(i for i in self.tasks if i not in self.parents)
        self.graph.add_edges_from((u, v, {"link": link}) for u, v, link in self.links)

    def _hierarchy(self) -> list[tuple[str, str, Link]]:
        links = [(p + START, p + FINISH, _HIERARCHY_IN) for p in self.parents]
        for task in self.tasks.values():
            if task.parent_id in self.parents:
                parent = str(task.parent_id)
                links.append((parent + START, self.node_of(task.id, False), _HIERARCHY_IN))
                links.append((self.node_of(task.id, True), parent + FINISH, _HIERARCHY_OUT))
        return links

    def _dependencies(self) -> list[tuple[str, str, Link]]:
        # Edges of one type and lag share one Link: a session has few distinct ones.
        shared: dict[tuple[DependencyType, float | None], Link] = {}
        links = []
        tasks, parents = self.tasks, self.parents
        for d in self.dependencies:
            source, target = d.predecessor_id, d.successor_id
            if source not in tasks or target not in tasks:
                continue
            link = shared.get((d.dependency_type, d.lag_hours))
            if link is None:
                link = Link(d.waits_for_finish, not d.gates_start, d.lag)
                shared[(d.dependency_type, d.lag_hours)] = link
            if source in parents or target in parents:
                source = self.node_of(source, link.from_finish)
                target = self.node_of(target, link.to_finish)
            links.append((source, target, link))
        return links

    def node_of(self, task_id: str, finish: bool) -> str:
        """The network node of a task's start or finish event."""
        if task_id not in self.parents:
            return task_id
        return task_id + (FINISH if finish else START)

    @staticmethod
    def task_of(node: str) -> str:
        return node.split(":", 1)[0]

    def is_leaf(self, node: str) -> bool:
        return ":" not in node

    def cycle_through(self, dependency: Dependency) -> list[str] | None:
        """The tasks of the cycle `dependency` would close, first task repeated at the end
        (`[a, b, a]`), in precedence order; None when it closes none."""
        source = self.node_of(dependency.successor_id, not dependency.gates_start)
        target = self.node_of(dependency.predecessor_id, dependency.waits_for_finish)
        if source == target:
            return [dependency.successor_id, dependency.successor_id]
        try:
            path: list[str] = nx.shortest_path(self.graph, source, target)
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            return None
        tasks = [self.task_of(n) for n in [*path, source]]
        # A parent's start and finish milestones are one task to a reader.
        return [t for i, t in enumerate(tasks) if i == 0 or t != tasks[i - 1]]

    def ancestors(self, task_id: str) -> list[str]:
        """Parent first, root last."""
        chain: list[str] = []
        current = self.tasks.get(task_id)
        while current is not None and current.parent_id is not None:
            chain.append(current.parent_id)
            current = self.tasks.get(current.parent_id)
        return chain

    def related_by_lineage(self, a: str, b: str) -> bool:
        return a in self.ancestors(b) or b in self.ancestors(a)

    def describe(self, task_ids: Iterable[str]) -> str:
        """`title [id] → title [id] → …`, for messages a person reads."""
        return " → ".join(f"{self._title(t)} [{t}]" for t in task_ids)

    def _title(self, task_id: str) -> str:
        task = self.tasks.get(task_id)
        return task.title if task else "?"
