"""Merging one document (the source) into another (the target) by a strategy.

In every strategy objects are merged key by key, paths only the source holds are added to
the target, and paths only the target holds are kept. The strategies differ on the paths both
hold with different values (see `ContextDiff` for which of those are conflicts):

- LAST_WRITE_WINS: the side whose history shows the later write of the path (or of an object
  above or below it) wins; a context's creation counts as a write of every path. A tie goes to
  the source, whose arrival is what the merge is for.
- DEEP_MERGE: lists are united (the target's items, then the source's not already there);
  any other differing value takes the source's. The base plays no part.
- PREFER_SOURCE / PREFER_TARGET: a path only one side changed since the common base takes that
  side's value; at a conflict the preferred side wins. Without a base every difference is a
  conflict.
- MANUAL: as the PREFER_* strategies for paths one side changed, but a conflict keeps the
  target's value and is reported for a person. MANUAL never writes: the plan it returns is a
  proposal, to be applied with an update once the conflicts are settled.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from .changes import Edit
from .diff import DiffEntry, diff
from .paths import related, set_at
from .values import MISSING, json_equal


class MergeStrategy(StrEnum):
    LAST_WRITE_WINS = "last_write_wins"
    DEEP_MERGE = "deep_merge"
    PREFER_SOURCE = "prefer_source"
    PREFER_TARGET = "prefer_target"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class WriteLog:
    """When one context last wrote each path: `latest` from its history, `created_at` for
    paths its history never touched."""

    created_at: datetime
    latest: Mapping[str, datetime] = field(default_factory=dict)

    def last_write(self, path: str) -> datetime:
        return max([self.created_at, *(t for p, t in self.latest.items() if related(p, path))])


@dataclass(frozen=True, slots=True)
class MergePlan:
    """The target's document after the merge, the edits that make it, and the conflicts."""

    data: dict[str, Any]
    edits: tuple[Edit, ...]
    conflicts: tuple[DiffEntry, ...]


def plan_merge(
    target: dict[str, Any],
    source: dict[str, Any],
    strategy: MergeStrategy,
    *,
    base: dict[str, Any] | None = None,
    target_log: WriteLog | None = None,
    source_log: WriteLog | None = None,
) -> MergePlan:
    """Neither document is touched. LAST_WRITE_WINS needs both write logs."""
    if strategy is MergeStrategy.LAST_WRITE_WINS and (target_log is None or source_log is None):
        raise ValueError("LAST_WRITE_WINS needs the write logs of both contexts")
    found = diff(target, source, base)
    conflicting = {e.path for e in found.conflicts}
    edits = [Edit(e.path, MISSING, e.other_value) for e in found.added]
    for entry in found.changed:
        value = _settle(entry, entry.path in conflicting, strategy, target_log, source_log)
        if not json_equal(value, entry.value):
            edits.append(Edit(entry.path, entry.value, value))
    edits.sort(key=lambda e: e.path)
    data = copy.deepcopy(target)
    for edit in edits:
        # Diff paths run through objects both documents hold, so every parent exists.
        set_at(data, tuple(edit.path.split(".")), edit.new, "merge")
    return MergePlan(data, tuple(edits), found.conflicts)


def _settle(
    entry: DiffEntry,
    conflict: bool,
    strategy: MergeStrategy,
    target_log: WriteLog | None,
    source_log: WriteLog | None,
) -> Any:
    mine, theirs = entry.value, entry.other_value
    if strategy is MergeStrategy.LAST_WRITE_WINS:
        assert target_log is not None and source_log is not None
        source_later = source_log.last_write(entry.path) >= target_log.last_write(entry.path)
        return theirs if source_later else mine
    if strategy is MergeStrategy.DEEP_MERGE:
        if isinstance(mine, list) and isinstance(theirs, list):
            return [*mine, *(x for x in theirs if not any(json_equal(x, y) for y in mine))]
        return theirs
    if not conflict:
        # Exactly one side moved away from the base: take that side's value.
        return theirs if json_equal(mine, entry.base_value) else mine
    return theirs if strategy is MergeStrategy.PREFER_SOURCE else mine
