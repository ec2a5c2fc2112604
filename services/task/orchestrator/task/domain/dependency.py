"""Dependencies: edges of a session's task graph, and the rules a new one must satisfy."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from orchestrator.common.errors import InvalidArgument

from .kinds import DependencyType

MAX_LAG_HOURS = 10_000.0


@dataclass(frozen=True, slots=True)
class Dependency:
    """`successor_id` waits for `predecessor_id`; at most one per pair.

    `lag_hours` delays (or, negative, advances) the successor's event after the predecessor's;
    None means none. The scheduler honours a positive lag after FINISH_TO_START and
    START_TO_START by setting the successor's next_attempt_at; the critical path counts every
    lag.
    """

    predecessor_id: str
    successor_id: str
    dependency_type: DependencyType
    lag_hours: float | None
    created_at: datetime

    @property
    def lag(self) -> float:
        return self.lag_hours or 0.0

    @property
    def gates_start(self) -> bool:
        return self.dependency_type.successor_event == "start"

    @property
    def waits_for_finish(self) -> bool:
        """True when the predecessor must complete, False when it only has to start."""
        return self.dependency_type.predecessor_event == "finish"


def validate_lag(lag_hours: float | None) -> float | None:
    if lag_hours is None:
        return None
    if not math.isfinite(lag_hours) or abs(lag_hours) > MAX_LAG_HOURS:
        raise InvalidArgument(
            f"lag_hours must be a finite number of hours within ±{MAX_LAG_HOURS:g}; "
            f"got {lag_hours}",
            field="lag_hours",
        )
    return float(lag_hours)


def validate_pair(successor_id: str, predecessor_id: str, field: str) -> None:
    if successor_id == predecessor_id:
        raise InvalidArgument(f"task {successor_id} cannot depend on itself", field=field)
