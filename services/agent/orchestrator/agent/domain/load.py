"""An agent's load: how many of its task slots are taken, as a fraction and as a level.

utilisation = current_tasks / max_concurrent_tasks, capped at 1.0 (a worker may report more
tasks than its maximum after a restart; the level still says so).

Level from the uncapped ratio r:
    IDLE        no task at all (r = 0)
    OPTIMAL     0 < r <= 0.6
    HIGH        0.6 < r <= 0.8
    CRITICAL    0.8 < r < 1.0
    OVERLOADED  r >= 1.0, i.e. no free slot: at capacity counts, as routing can add nothing more
"""

from __future__ import annotations

from enum import StrEnum


class LoadLevel(StrEnum):
    IDLE = "idle"
    OPTIMAL = "optimal"
    HIGH = "high"
    CRITICAL = "critical"
    OVERLOADED = "overloaded"


OPTIMAL_UP_TO = 0.6
HIGH_UP_TO = 0.8


def utilisation(current_tasks: int, max_tasks: int) -> float:
    if max_tasks <= 0:
        return 1.0
    return min(1.0, current_tasks / max_tasks)


def load_level(current_tasks: int, max_tasks: int) -> LoadLevel:
    if current_tasks <= 0:
        return LoadLevel.IDLE
    ratio = current_tasks / max_tasks if max_tasks > 0 else 1.0
    if ratio <= OPTIMAL_UP_TO:
        return LoadLevel.OPTIMAL
    if ratio <= HIGH_UP_TO:
        return LoadLevel.HIGH
    if ratio < 1.0:
        return LoadLevel.CRITICAL
    return LoadLevel.OVERLOADED
