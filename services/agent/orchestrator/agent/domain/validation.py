"""Rules an agent's fields and requests must satisfy; each refusal is an InvalidArgument naming
the field and what is wrong with it, raised before anything changes."""

from __future__ import annotations

import copy
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit

from orchestrator.common.errors import InvalidArgument

from .kinds import Capability, ExecutorKind

NAME_MAX = 64
NAME_PATTERN = re.compile(r"^AGENT-[A-Z0-9-]+$")
TECHNOLOGY_MAX = 64
MAX_TECHNOLOGIES = 50
MODEL_IDENTIFIER_MAX = 200
# `provider/model`, as sessions spell it (e.g. `openrouter/meta-llama/llama-3`, `ollama/llama3:8b`).
MODEL_IDENTIFIER_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._:/-]*$")
ENDPOINT_MAX = 2_000
DEFAULT_MAX_TASKS = 1
MAX_TASKS_CEILING = 1_000
TASK_ID_MAX = 200
TASK_ID_PATTERN = re.compile(r"^[^\s\x00-\x1f]+$")
REASON_MAX = 1_000
JSON_MAX_DEPTH = 100  # protobuf's Struct refuses deeper nesting

E = TypeVar("E", bound=StrEnum)


def as_utc(moment: datetime) -> datetime:
    """The domain keeps every timestamp aware and in UTC; a naive one is a caller's bug."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no time zone; pass an aware datetime")
    return moment.astimezone(UTC)


def validate_agent_id(value: str | None, field: str = "agent_id") -> str:
    """Empty means "choose one": a new uuid4. A given id is normalised to canonical form."""
    if not value:
        return str(uuid.uuid4())
    return parse_uuid(value, field)


def parse_uuid(value: str, field: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument(f"{field} {value!r} is not a UUID", field=field) from None


def validate_name(name: str) -> str:
    if len(name) > NAME_MAX or not NAME_PATTERN.match(name):
        raise InvalidArgument(
            f"name {name!r} is malformed: it must be AGENT- followed by upper-case letters, "
            f"digits or dashes (e.g. AGENT-IMPL-01), at most {NAME_MAX} characters",
            field="name",
        )
    return name


def validate_member(kind: type[E], value: E | str, field: str) -> E:
    """Accepts a member or its value, so callers holding strings get a clear refusal."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(kind)
        raise InvalidArgument(f"{field} {value!r} is not one of: {allowed}", field=field) from None


def validate_members(kind: type[E], values: Iterable[E | str], field: str) -> tuple[E, ...]:
    """Members in first-seen order, duplicates dropped."""
    return tuple(dict.fromkeys(validate_member(kind, v, field) for v in values))


def validate_capabilities(
    primary: Iterable[Capability | str], secondary: Iterable[Capability | str]
) -> tuple[tuple[Capability, ...], tuple[Capability, ...]]:
    first = validate_members(Capability, primary, "primary_capabilities")
    if not first:
        raise InvalidArgument(
            "primary_capabilities must name at least one capability",
            field="primary_capabilities",
        )
    second = validate_members(Capability, secondary, "secondary_capabilities")
    both = sorted(c.name for c in set(first) & set(second))
    if both:
        raise InvalidArgument(
            f"secondary_capabilities repeats primary ones: {', '.join(both)}; "
            "list each capability once",
            field="secondary_capabilities",
        )
    return first, second


def validate_technologies(values: Iterable[str], field: str) -> tuple[str, ...]:
    """Compared case-insensitively, so kept trimmed and lower-case; duplicates dropped."""
    techs = tuple(dict.fromkeys(v.strip().lower() for v in values))
    for tech in techs:
        if not 1 <= len(tech) <= TECHNOLOGY_MAX or not tech.isprintable():
            raise InvalidArgument(
                f"{field}: {tech!r} must be 1 to {TECHNOLOGY_MAX} printable characters",
                field=field,
            )
    if len(techs) > MAX_TECHNOLOGIES:
        raise InvalidArgument(
            f"{field}: at most {MAX_TECHNOLOGIES} distinct entries; got {len(techs)}", field=field
        )
    return techs


def validate_executor(kind: ExecutorKind | str, endpoint: str) -> tuple[ExecutorKind, str]:
    """OPENCODE needs the http(s) base URL of its server; SHELL runs locally and takes none."""
    executor = validate_member(ExecutorKind, kind, "executor_kind")
    if executor is ExecutorKind.SHELL:
        if endpoint:
            raise InvalidArgument(
                "executor_endpoint must be empty for a SHELL executor", field="executor_endpoint"
            )
        return executor, ""
    parts = urlsplit(endpoint)
    if len(endpoint) > ENDPOINT_MAX or parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgument(
            f"executor_endpoint {endpoint!r} is not the http(s) URL of an OpenCode server "
            "(e.g. http://127.0.0.1:4096)",
            field="executor_endpoint",
        )
    return executor, endpoint.rstrip("/")


def validate_model_identifier(model_identifier: str) -> str:
    if not model_identifier:
        return ""
    too_long = len(model_identifier) > MODEL_IDENTIFIER_MAX
    if too_long or not MODEL_IDENTIFIER_PATTERN.match(model_identifier):
        raise InvalidArgument(
            f"model_identifier {model_identifier!r} is not `provider/model` "
            f"(e.g. anthropic/claude-sonnet-4, at most {MODEL_IDENTIFIER_MAX} characters)",
            field="model_identifier",
        )
    return model_identifier


def validate_max_tasks(value: int) -> int:
    """0 means the default of one task at a time."""
    if value == 0:
        return DEFAULT_MAX_TASKS
    if not 1 <= value <= MAX_TASKS_CEILING:
        raise InvalidArgument(
            f"max_concurrent_tasks must be 1 to {MAX_TASKS_CEILING} (or 0 for "
            f"{DEFAULT_MAX_TASKS}); got {value}",
            field="max_concurrent_tasks",
        )
    return value


def validate_task_id(value: str, field: str = "task_id") -> str:
    if not value or len(value) > TASK_ID_MAX or not TASK_ID_PATTERN.match(value):
        raise InvalidArgument(
            f"{field} {value!r} must be 1 to {TASK_ID_MAX} characters without spaces",
            field=field,
        )
    return value


def validate_task_ids(values: Iterable[str], field: str) -> tuple[str, ...]:
    return tuple(sorted({validate_task_id(v, field) for v in values}))


def validate_duration(seconds: float) -> float:
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidArgument(
            f"duration_seconds must be a finite number >= 0; got {seconds}",
            field="duration_seconds",
        )
    return seconds


def validate_quality(score: float | None) -> float | None:
    if score is not None and not (math.isfinite(score) and 0.0 <= score <= 1.0):
        raise InvalidArgument(
            f"quality_score must be 0 to 1 when given; got {score}", field="quality_score"
        )
    return score


def validate_reason(reason: str) -> str:
    if len(reason) > REASON_MAX:
        raise InvalidArgument(
            f"reason must be at most {REASON_MAX} characters; got {len(reason)}", field="reason"
        )
    return reason


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
    raise InvalidArgument(
        f"{path} holds a {type(value).__name__}, which is not a JSON value", field=field
    )
