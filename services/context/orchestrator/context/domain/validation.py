"""Rules for the fields a context is created with; each refusal names the field."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from orchestrator.common.errors import InvalidArgument

from .limits import DEFAULT_TTL_SECONDS, MAX_NAME_LENGTH, MAX_TTL_SECONDS
from .scope import ContextScope
from .values import check_json, key_problem


def as_utc(moment: datetime) -> datetime:
    """The domain keeps every timestamp aware and in UTC; a naive one is a caller's bug."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no time zone; pass an aware datetime")
    return moment.astimezone(UTC)


def validate_id(value: str | None, field: str) -> str:
    """Empty means "choose one": a new uuid4. A given id is normalised to canonical form."""
    if not value:
        return str(uuid.uuid4())
    return parse_id(value, field)


def parse_id(value: str, field: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument(f"{field} must be a UUID, got {value!r}", field=field) from None


def validate_name(name: str, field: str = "name") -> str:
    """Empty is the owner's default context; otherwise the rules of an object key."""
    if name == "":
        return name
    problem = key_problem(name)
    if problem is not None or len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(
            f"{field} must be empty or 1 to {MAX_NAME_LENGTH} characters without dots or "
            f"control characters; {problem or 'it is too long'}",
            field=field,
        )
    return name


def validate_ttl(scope: ContextScope, ttl_seconds: int, field: str = "ttl_seconds") -> int | None:
    """Seconds a TEMPORARY context lives (0: the default); None for the other scopes."""
    if scope is not ContextScope.TEMPORARY:
        if ttl_seconds:
            raise InvalidArgument(
                f"{field} applies only to TEMPORARY contexts; a {scope.upper()} context lives "
                "until deleted",
                field=field,
            )
        return None
    if ttl_seconds == 0:
        return DEFAULT_TTL_SECONDS
    if not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise InvalidArgument(
            f"{field} must be 1 to {MAX_TTL_SECONDS} seconds (30 days), or 0 for "
            f"{DEFAULT_TTL_SECONDS}; got {ttl_seconds}",
            field=field,
        )
    return ttl_seconds


def validate_data(data: Mapping[str, Any] | None, field: str = "data") -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise InvalidArgument(f"{field} must be a JSON object", field=field)
    check_json(data, "", field, depth=0)
    return dict(data)
