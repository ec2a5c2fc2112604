"""The critical path method over a TaskNetwork: order, timings, critical path, ready set.

Durations are the PERT expected hours of the work still to do: a finished task (terminal, or
done and awaiting approval or a finish dependency) takes 0 h. For a fresh session the figures
are the plan; as work completes, the critical path is the longest one through what is left,
and "now + its length" is the session's expected finish.

Every dependency type is a constraint between two events, shifted by its lag:
finish-to-start ES(b) >= EF(a) + lag, start-to-start ES(b) >= ES(a) + lag, finish-to-finish
EF(b) >= EF(a) + lag, start-to-finish EF(b) >= ES(a) + lag (no start before 0). The critical
path follows the binding constraints back from the latest finish; its length is that finish.
Its sigma sums the variances of the tasks whose whole duration lies on the path (entered at
their start, left at their finish): on a finish-to-start chain that is every task, exactly
as PERT has it; a task that a start-to-start link only passes by the start does not count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx  # type: ignore[import-untyped, unused-ignore]

from .network import Link, TaskNetwork
from .status import TaskStatus

_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Timing:
    """Hours from now (the start of the remaining work) by the expected durations."""

    earliest_start: float
    latest_start: float

    @property
    def slack(self) -> float:
        return self.latest_start - self.earliest_start


@dataclass(frozen=True, slots=True)
class Schedule:
    # Every task; a parent's figures are those of its start milestone.
    timings: dict[str, Timing]
    # Leaf tasks in a topological order, ties broken by priority then creation.
    order: list[str]
    # READY leaf tasks, critical path first, then priority, then earliest start.
    ready: list[str]
    # Unfinished leaf tasks on the critical path, first to last.
    critical_path: list[str]
    expected_hours: float
    sigma_hours: float


def schedule(network: TaskNetwork) -> Schedule:
    duration = _durations(network)
    order = _topological(network)
    preds: Adjacency = {n: [] for n in order}
    succs: Adjacency = {n: [] for n in order}
    for u, v, link in network.links:
        preds[v].append((u, link))
        succs[u].append((v, link))
    es = _forward(order, preds, duration)
    length = max((es[n] + duration[n] for n in order), default=0.0)
    ls = _backward(order, succs, duration, length)
    path, traversed = _trace(order, preds, es, duration, length)
    tasks = network.tasks
    critical = [n for n in path if network.is_leaf(n) and not tasks[n].finished]
    sigma = math.sqrt(
        sum(
            tasks[n].sigma_hours ** 2
            for n in traversed
            if network.is_leaf(n) and not tasks[n].finished
        )
    )
    timings = {
        task_id: _timing(es, ls, network.node_of(task_id, finish=False)) for task_id in tasks
    }
    leaves = [n for n in order if network.is_leaf(n)]
    return Schedule(
        timings=timings,
        order=leaves,
        ready=_ready(network, leaves, set(critical), es),
        critical_path=critical,
        expected_hours=length,
        sigma_hours=sigma,
    )


Adjacency = dict[str, list[tuple[str, Link]]]


def _durations(network: TaskNetwork) -> dict[str, float]:
    duration = dict.fromkeys(network.graph.nodes, 0.0)
    for task_id, task in network.tasks.items():
        if task_id not in network.parents and not task.finished:
            duration[task_id] = task.expected_hours
    return duration


def _topological(network: TaskNetwork) -> list[str]:
    """Among tasks free to go next, the most urgent first; milestones as soon as they can."""
    tasks = network.tasks

    def key(node: str) -> tuple[int, int]:
        task = tasks[TaskNetwork.task_of(node)]
        return (task.priority.rank if network.is_leaf(node) else -1, task.order)

    return list(nx.lexicographical_topological_sort(network.graph, key=key))


def _offset(link: Link, duration_from: float, duration_to: float) -> float:
    """ES(to) >= ES(from) + offset, whichever events the link joins."""
    return (
        (duration_from if link.from_finish else 0.0)
        + link.lag
        - (duration_to if link.to_finish else 0.0)
    )


def _forward(order: list[str], preds: Adjacency, duration: dict[str, float]) -> dict[str, float]:
    es: dict[str, float] = {}
    for v in order:
        start = 0.0
        dv = duration[v]
        for u, link in preds[v]:
            start = max(start, es[u] + _offset(link, duration[u], dv))
        es[v] = start
    return es


def _backward(
    order: list[str], succs: Adjacency, duration: dict[str, float], length: float
) -> dict[str, float]:
    ls: dict[str, float] = {}
    for u in reversed(order):
        du = duration[u]
        latest = length - du
        for v, link in succs[u]:
            latest = min(latest, ls[v] - _offset(link, du, duration[v]))
        ls[u] = latest
    return ls


def _trace(
    order: list[str],
    preds: Adjacency,
    es: dict[str, float],
    duration: dict[str, float],
    length: float,
) -> tuple[list[str], list[str]]:
    """The nodes of the critical path, first to last, and those whose duration it traverses."""
    if not order:
        return [], []
    position = {n: i for i, n in enumerate(order)}
    node = next(n for n in order if _same(es[n] + duration[n], length))
    nodes, links = [node], []
    while (step := _binding(preds, node, es, duration, position)) is not None:
        node, link = step
        nodes.append(node)
        links.append(link)
    nodes.reverse()
    links.reverse()
    # links[i] joins nodes[i] to nodes[i + 1]; the path starts at a start and ends at a finish.
    entered_at_finish = [False, *(link.to_finish for link in links)]
    left_at_finish = [*(link.from_finish for link in links), True]
    traversed = [
        n
        for n, entered, left in zip(nodes, entered_at_finish, left_at_finish, strict=True)
        if not entered and left
    ]
    return nodes, traversed


def _binding(
    preds: Adjacency,
    node: str,
    es: dict[str, float],
    duration: dict[str, float],
    position: dict[str, int],
) -> tuple[str, Link] | None:
    """The predecessor whose constraint sets `node`'s earliest start (the first in order)."""
    best: tuple[int, str, Link] | None = None
    for u, link in preds[node]:
        if _same(es[u] + _offset(link, duration[u], duration[node]), es[node]) and (
            best is None or position[u] < best[0]
        ):
            best = (position[u], u, link)
    return None if best is None else (best[1], best[2])


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= _EPSILON * max(1.0, abs(b))


def _timing(es: dict[str, float], ls: dict[str, float], node: str) -> Timing:
    earliest = es[node]
    return Timing(earliest, max(earliest, ls[node]))


def _ready(
    network: TaskNetwork, leaves: list[str], critical: set[str], es: dict[str, float]
) -> list[str]:
    ready = [n for n in leaves if network.tasks[n].status is TaskStatus.READY]
    tasks = network.tasks
    return sorted(
        ready,
        key=lambda n: (n not in critical, tasks[n].priority.rank, es[n], tasks[n].order),
    )
