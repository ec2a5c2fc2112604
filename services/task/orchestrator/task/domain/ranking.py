"""Critical path first: how much work, at the least, still hangs on each task.

A task's rank is the expected hours of the longest chain of work that starts with it: its own
expected hours plus the largest rank among its dependants. Among ready tasks of one priority,
the scheduler runs the highest rank first, so the chain that decides when the session can end
never waits behind work that could have waited.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping


def remaining_path_hours(
    hours: Mapping[str, float], edges: Iterable[tuple[str, str]]
) -> dict[str, float]:
    """Each task's rank, from its expected `hours` and (predecessor, successor) `edges`.

    Edges naming unknown tasks are ignored. A cycle cannot be stored (dependencies are checked
    when added); should one appear anyway, its tasks keep their own hours as their rank.
    """
    successors: dict[str, list[str]] = defaultdict(list)
    waiting = dict.fromkeys(hours, 0)  # dependants not yet ranked, per task
    for before, after in edges:
        if before in hours and after in hours:
            successors[before].append(after)
            waiting[before] += 1
    predecessors: dict[str, list[str]] = defaultdict(list)
    for before, afters in successors.items():
        for after in afters:
            predecessors[after].append(before)
    rank = {task: max(0.0, h) for task, h in hours.items()}
    # From the sinks backwards: a task is ranked once all its dependants are.
    ready = deque(task for task, n in waiting.items() if n == 0)
    while ready:
        task = ready.popleft()
        for before in predecessors[task]:
            rank[before] = max(rank[before], max(0.0, hours[before]) + rank[task])
            waiting[before] -= 1
            if waiting[before] == 0:
                ready.append(before)
    return rank
