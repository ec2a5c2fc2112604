"""What differs between two documents, path by path, and which differences are conflicts.

Objects are compared key by key; any other value (lists included) is compared whole. So the
paths of one diff never lie inside each other, and each can be written on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .paths import lenient_get
from .values import MISSING, json_equal


@dataclass(frozen=True, slots=True)
class DiffEntry:
    """`value` is the first document's, `other_value` the other's, `base_value` the common
    base's; each is MISSING where its side lacks the path (or there is no base)."""

    path: str
    value: Any
    other_value: Any
    base_value: Any = MISSING


@dataclass(frozen=True, slots=True)
class ContextDiff:
    """Read from the first document towards the other."""

    # Paths only the other holds.
    added: tuple[DiffEntry, ...] = ()
    # Paths only the first holds.
    removed: tuple[DiffEntry, ...] = ()
    # Paths both hold with different values.
    changed: tuple[DiffEntry, ...] = ()
    # The changed paths a merge cannot settle by itself: with a common base, those both sides
    # changed since it; without one, all of them.
    conflicts: tuple[DiffEntry, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff(first: dict[str, Any], other: dict[str, Any], base: dict[str, Any] | None) -> ContextDiff:
    """`base` is the common base when one document was cloned from the other, else None."""
    added: list[DiffEntry] = []
    removed: list[DiffEntry] = []
    changed: list[DiffEntry] = []
    _walk(first, other, "", added, removed, changed)
    if base is not None:
        added = _with_base(added, base)
        removed = _with_base(removed, base)
        changed = _with_base(changed, base)
        conflicts = [e for e in changed if _both_moved(e)]
    else:
        conflicts = changed
    return ContextDiff(tuple(added), tuple(removed), tuple(changed), tuple(conflicts))


def _with_base(entries: list[DiffEntry], base: dict[str, Any]) -> list[DiffEntry]:
    return [DiffEntry(e.path, e.value, e.other_value, lenient_get(base, e.path)) for e in entries]


def _both_moved(entry: DiffEntry) -> bool:
    """Both sides hold a value other than the base's (absent from the base counts as moved)."""
    return not json_equal(entry.value, entry.base_value) and not json_equal(
        entry.other_value, entry.base_value
    )


def _walk(
    first: dict[str, Any],
    other: dict[str, Any],
    prefix: str,
    added: list[DiffEntry],
    removed: list[DiffEntry],
    changed: list[DiffEntry],
) -> None:
    for key in sorted(first.keys() | other.keys()):
        path = f"{prefix}.{key}" if prefix else key
        mine, theirs = first.get(key, MISSING), other.get(key, MISSING)
        if theirs is MISSING:
            removed.append(DiffEntry(path, mine, MISSING))
        elif mine is MISSING:
            added.append(DiffEntry(path, MISSING, theirs))
        elif isinstance(mine, dict) and isinstance(theirs, dict):
            _walk(mine, theirs, path, added, removed, changed)
        elif not json_equal(mine, theirs):
            changed.append(DiffEntry(path, mine, theirs))
