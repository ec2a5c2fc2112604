"""Checkpoints: snapshots a failed or timed-out session resumes from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.common.errors import InvalidArgument


@dataclass(frozen=True, slots=True)
class Checkpoint:
    session_id: str
    sequence: int
    created_at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    created_by: str = ""


def next_sequence(latest: Checkpoint | None, requested: int) -> int:
    """0 asks for the one after the latest; any other number must be above the latest.

    Sequences are never reused, so a retry that resumes from checkpoint 4 writes 5 next.
    """
    latest_sequence = latest.sequence if latest else 0
    if requested == 0:
        return latest_sequence + 1
    if requested < 0:
        raise InvalidArgument(
            f"sequence must be positive, or 0 for the next one; got {requested}", field="sequence"
        )
    if requested <= latest_sequence:
        raise InvalidArgument(
            f"sequence {requested} is not after the latest checkpoint ({latest_sequence}); "
            "sequences strictly increase and are never reused",
            field="sequence",
        )
    return requested
