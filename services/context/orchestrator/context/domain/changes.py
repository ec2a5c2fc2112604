"""Operations on a document by dot path, and the changes they make.

An `Edit` is what one path went from and to; a `Change` is an edit as the history keeps it,
with who made it, when, and the version it produced.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from orchestrator.common.errors import InvalidArgument, ResourceExhausted

from .limits import (
    MAX_CHANGE_BYTES,
    MAX_DOCUMENT_BYTES,
    MAX_OPERATIONS,
    MAX_VALUE_BYTES,
    describe_bytes,
)
from .paths import delete_at, get_at, parse_path, related, set_at
from .values import MISSING, check_json, json_equal, json_size


class OperationType(StrEnum):
    SET = "set"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Operation:
    """SET puts `value` at `path` (creating parent objects); DELETE removes the path."""

    type: OperationType
    path: str
    value: Any = MISSING


@dataclass(frozen=True, slots=True)
class Edit:
    """`old` is MISSING when the path did not exist; `new` is MISSING when it was removed."""

    path: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    old: Any
    new: Any
    changed_by: str
    changed_at: datetime
    version: int


def apply_operations(
    data: dict[str, Any], operations: Sequence[Operation]
) -> tuple[dict[str, Any], list[Edit]]:
    """The document after every operation, in order, and one edit per path that changed.

    `data` is not touched; any refusal leaves the caller with nothing changed."""
    if not 1 <= len(operations) <= MAX_OPERATIONS:
        raise InvalidArgument(
            f"an update takes 1 to {MAX_OPERATIONS} operations; got {len(operations)}",
            field="operations",
        )
    doc = copy.deepcopy(data)
    edits: list[Edit] = []
    for index, op in enumerate(operations):
        doc, edit = _apply(doc, op, f"operations[{index}]")
        edits.append(edit)
    return doc, collapse(edits)


def _apply(doc: dict[str, Any], op: Operation, field: str) -> tuple[dict[str, Any], Edit]:
    segments = parse_path(op.path, f"{field}.path")
    old = get_at(doc, segments, f"{field}.path")
    if op.type is OperationType.DELETE:
        return delete_at(doc, segments, f"{field}.path"), Edit(op.path, old, MISSING)
    if op.value is MISSING:
        raise InvalidArgument(
            f"{field} sets {op.path!r} but carries no value (JSON null is a value; "
            "to remove the path use DELETE)",
            field=f"{field}.value",
        )
    check_json(op.value, op.path, f"{field}.value", depth=len(segments))
    size = json_size(op.value)
    if size > MAX_VALUE_BYTES:
        raise InvalidArgument(
            f"the value for {op.path or 'the whole document'!r} is {size} bytes as JSON; one "
            f"value may be at most {describe_bytes(MAX_VALUE_BYTES)}",
            field=f"{field}.value",
        )
    doc = set_at(doc, segments, op.value, f"{field}.path")
    return doc, Edit(op.path, old, copy.deepcopy(op.value))


def collapse(edits: Sequence[Edit]) -> list[Edit]:
    """Folds later edits of a path into its earlier one when nothing in between touched a
    related path (so replaying the result in order still gives the same document), then
    drops edits that end where they began."""
    folded: list[Edit] = []
    for edit in edits:
        for index in range(len(folded) - 1, -1, -1):
            earlier = folded[index]
            if earlier.path == edit.path:
                folded[index] = Edit(edit.path, earlier.old, edit.new)
                break
            if related(earlier.path, edit.path):
                folded.append(edit)
                break
        else:
            folded.append(edit)
    return [e for e in folded if not json_equal(e.old, e.new)]


def change_bytes(edits: Sequence[Edit] | Sequence[Change]) -> int:
    return sum(json_size(e.old) + json_size(e.new) for e in edits)


def check_document_size(doc: dict[str, Any], context_id: str) -> None:
    size = json_size(doc)
    if size > MAX_DOCUMENT_BYTES:
        raise ResourceExhausted(
            f"context {context_id} would hold {size} bytes of JSON; a context may hold at "
            f"most {describe_bytes(MAX_DOCUMENT_BYTES)}"
        )


def check_write(doc: dict[str, Any], edits: Sequence[Edit], context_id: str) -> None:
    """The limits every write obeys: the document's size, and what one event must carry."""
    check_document_size(doc, context_id)
    size = change_bytes(edits)
    if size > MAX_CHANGE_BYTES:
        raise ResourceExhausted(
            f"this write to context {context_id} changes {size} bytes (old plus new values); "
            f"one update or merge may change at most {describe_bytes(MAX_CHANGE_BYTES)}, "
            "so split it into several"
        )
