"""Contexts, shares and changes as rows of the `context` schema, and back."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from orchestrator.context.domain import MISSING, Change, Context, ContextScope, Share

# The contexts columns a Context is written to and read from, in this order.
COLUMNS = (
    "id, scope, owner_id, name, data, version, cloned_from_id, cloned_from_version, base,"
    " expires_at, created_by, created_at, updated_at, deleted_at"
)
CHANGE_COLUMNS = (
    "version, seq, path, old_value::text AS old_value, new_value::text AS new_value,"
    " changed_by, changed_at"
)


def context_columns(c: Context) -> tuple[Any, ...]:
    return (
        c.id,
        c.scope.value,
        c.owner_id,
        c.name,
        c.data,
        c.version,
        c.cloned_from_id,
        c.cloned_from_version,
        c.base,
        c.expires_at,
        c.created_by,
        c.created_at,
        c.updated_at,
        c.deleted_at,
    )


def context_from_row(row: asyncpg.Record) -> Context:
    shares = row["shares"] or []
    return Context(
        id=str(row["id"]),
        scope=ContextScope(row["scope"]),
        owner_id=row["owner_id"],
        name=row["name"],
        data=row["data"],
        version=row["version"],
        shared_with=[share_from_json(s) for s in shares],
        cloned_from_id=str(row["cloned_from_id"]) if row["cloned_from_id"] else None,
        cloned_from_version=row["cloned_from_version"],
        base=row["base"],
        expires_at=row["expires_at"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deleted_at=row["deleted_at"],
    )


def share_from_json(doc: Mapping[str, Any]) -> Share:
    return Share(
        scope=ContextScope(doc["scope"]),
        owner_id=doc["owner_id"],
        shared_by=doc["shared_by"],
        shared_at=datetime.fromisoformat(doc["shared_at"]),
    )


def encode_value(value: Any) -> str | None:
    """JSON text for a jsonb column; None (SQL NULL) for MISSING."""
    return None if value is MISSING else json.dumps(value, separators=(",", ":"))


def decode_value(text: str | None) -> Any:
    return MISSING if text is None else json.loads(text)


def change_rows(changes: Sequence[Change]) -> tuple[list[Any], ...]:
    """The history columns that vary per change, as parallel arrays for unnest()."""
    return (
        list(range(len(changes))),
        [c.path for c in changes],
        [encode_value(c.old) for c in changes],
        [encode_value(c.new) for c in changes],
        [c.changed_by for c in changes],
        [c.changed_at for c in changes],
    )


def change_from_row(row: asyncpg.Record) -> Change:
    return Change(
        path=row["path"],
        old=decode_value(row["old_value"]),
        new=decode_value(row["new_value"]),
        changed_by=row["changed_by"],
        changed_at=row["changed_at"],
        version=row["version"],
    )
