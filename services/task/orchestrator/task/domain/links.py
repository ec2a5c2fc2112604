"""Rules for the links between tasks: a parent, a predecessor, a new edge in the graph.

Bad input names the field and the problem (InvalidArgument): a task that does not exist, one
of another session, a dependency on oneself or one's own ancestor or descendant, an edge that
closes a cycle. A parent in the wrong state is a FailedPrecondition.
"""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.common.errors import FailedPrecondition, InvalidArgument

from .dependency import Dependency
from .network import TaskNetwork
from .scheduling import Peer
from .status import TaskStatus
from .task import Task


def check_parent(task: Task, parent: Task | None) -> None:
    """`parent` is the task named by `task.parent_id` (None when it does not exist)."""
    if task.parent_id is None:
        return
    if parent is None:
        raise InvalidArgument(f"parent_id {task.parent_id} names no task", field="parent_id")
    if parent.session_id != task.session_id:
        raise InvalidArgument(
            f"parent task {parent.id} belongs to session {parent.session_id}, not "
            f"{task.session_id}; a subtask joins its parent's session",
            field="parent_id",
        )
    if parent.is_terminal:
        raise FailedPrecondition(f"parent task {parent.id} is {parent.status}; it takes no subtask")
    if not parent.is_parent and parent.status not in (TaskStatus.PENDING, TaskStatus.READY):
        raise FailedPrecondition(
            f"task {parent.id} is {parent.status}; only a pending or ready task (or one that "
            "already has subtasks) takes new subtasks"
        )


def check_predecessor(
    session_id: str, predecessor_id: str, peers: Mapping[str, Peer], field: str
) -> Peer:
    peer = peers.get(predecessor_id)
    if peer is None:
        raise InvalidArgument(f"{field}: task {predecessor_id} does not exist", field=field)
    if peer.session_id != session_id:
        raise InvalidArgument(
            f"{field}: task {predecessor_id} belongs to session {peer.session_id}, not "
            f"{session_id}; dependencies join tasks of one session",
            field=field,
        )
    return peer


def check_edge(network: TaskNetwork, dependency: Dependency, field: str) -> None:
    """Refuses a dependency between a task and its own ancestor, and one that closes a cycle,
    naming the cycle."""
    successor, predecessor = dependency.successor_id, dependency.predecessor_id
    if network.related_by_lineage(successor, predecessor):
        raise InvalidArgument(
            f"{field}: {network.describe([successor])} and {network.describe([predecessor])} "
            "are a task and its own subtask; a subtask already waits for its parent's "
            "dependencies and a parent already finishes after its subtasks",
            field=field,
        )
    cycle = network.cycle_through(dependency)
    if cycle:
        raise InvalidArgument(
            f"{field}: task {successor} cannot depend on task {predecessor}: that would close "
            f"the cycle {network.describe(cycle)}",
            field=field,
        )
