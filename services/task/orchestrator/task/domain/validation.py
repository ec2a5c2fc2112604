"""Rules a task's fields must satisfy; each refusal is an InvalidArgument naming the field."""

from __future__ import annotations

import copy
import math
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from orchestrator.common.errors import InvalidArgument

TITLE_MAX = 200
DESCRIPTION_MAX = 10_000
TASK_TYPE_MAX = 64
TECHNOLOGY_MAX = 64
MAX_TECHNOLOGIES = 32
MAX_DEPENDS_ON = 100
MAX_ATTEMPTS_CEILING = 10
DEFAULT_MAX_ATTEMPTS = 3
JSON_MAX_DEPTH = 100  # protobuf's Struct refuses deeper nesting

E = TypeVar("E", bound=StrEnum)


def as_utc(moment: datetime) -> datetime:
    """The domain keeps every timestamp aware and in UTC; a naive one is a caller's bug."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no time zone; pass an aware datetime")
    return moment.astimezone(UTC)


def parse_uuid(value: str, field: str) -> str:
    """A canonical UUID string; anything else names the field."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument(f"{field} {value!r} is not a UUID", field=field) from None


def validate_task_id(value: str | None) -> str:
    """Empty means "choose one": a new uuid4."""
    return parse_uuid(value, "task_id") if value else str(uuid.uuid4())


def validate_title(title: str) -> str:
    trimmed = title.strip()
    if not 1 <= len(trimmed) <= TITLE_MAX:
        raise InvalidArgument(
            f"title must be 1 to {TITLE_MAX} characters after trimming; got {len(trimmed)}",
            field="title",
        )
    return trimmed


def validate_description(description: str) -> str:
    if len(description) > DESCRIPTION_MAX:
        raise InvalidArgument(
            f"description must be at most {DESCRIPTION_MAX} characters; got {len(description)}",
            field="description",
        )
    return description


def validate_task_type(task_type: str) -> str:
    if len(task_type) > TASK_TYPE_MAX:
        raise InvalidArgument(
            f"task_type must be at most {TASK_TYPE_MAX} characters", field="task_type"
        )
    return task_type.strip()


def validate_technologies(values: Iterable[str]) -> list[str]:
    """Trimmed, duplicates dropped (first kept)."""
    unique = list(dict.fromkeys(v.strip() for v in values))
    for value in unique:
        if not 1 <= len(value) <= TECHNOLOGY_MAX:
            raise InvalidArgument(
                f"technologies: {value!r} must be 1 to {TECHNOLOGY_MAX} characters",
                field="technologies",
            )
    if len(unique) > MAX_TECHNOLOGIES:
        raise InvalidArgument(
            f"technologies: at most {MAX_TECHNOLOGIES}; got {len(unique)}", field="technologies"
        )
    return unique


def validate_max_attempts(value: int) -> int:
    """0 means the default (3)."""
    if value == 0:
        return DEFAULT_MAX_ATTEMPTS
    if not 1 <= value <= MAX_ATTEMPTS_CEILING:
        raise InvalidArgument(
            f"max_attempts must be 1 to {MAX_ATTEMPTS_CEILING} (or 0 for "
            f"{DEFAULT_MAX_ATTEMPTS}); got {value}",
            field="max_attempts",
        )
    return value


def validate_depends_on(values: Iterable[str], task_id: str) -> list[str]:
    ids = list(dict.fromkeys(parse_uuid(v, "depends_on") for v in values))
    if task_id in ids:
        raise InvalidArgument(f"task {task_id} cannot depend on itself", field="depends_on")
    if len(ids) > MAX_DEPENDS_ON:
        raise InvalidArgument(
            f"depends_on: at most {MAX_DEPENDS_ON} tasks; got {len(ids)}", field="depends_on"
        )
    return ids


def validate_required_text(value: str, field: str, why: str) -> str:
    if not value.strip():
        raise InvalidArgument(f"{field} must not be empty: {why}", field=field)
    return value


def validate_member(kind: type[E], value: E | str, field: str) -> E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(kind)
        raise InvalidArgument(f"{field} {value!r} is not one of: {allowed}", field=field) from None


def validate_json_object(value: Mapping[str, Any] | None, field: str) -> dict[str, Any]:
    """A deep copy of `value` after checking it is plain JSON (what a protobuf Struct holds)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{field} must be a JSON object", field=field)
    _check_json(value, field, field, depth=0)
    return copy.deepcopy(dict(value))


def _check_json(value: object, path: str, field: str, depth: int) -> None:
    if depth > JSON_MAX_DEPTH:
        raise InvalidArgument(f"{path} is nested deeper than {JSON_MAX_DEPTH} levels", field=field)
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument(f"{path} is {value}; JSON has no NaN or infinity", field=field)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidArgument(f"{path} has key {key!r}; keys must be strings", field=field)
            _check_json(item, f"{path}.{key}", field, depth + 1)
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json(item, f"{path}[{index}]", field, depth + 1)
        return
    raise InvalidArgument(f"{path} holds a {type(value).__name__}, not a JSON value", field=field)
