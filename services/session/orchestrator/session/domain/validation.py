"""Rules a session's fields must satisfy; each refusal is an InvalidArgument naming the field."""

from __future__ import annotations

import copy
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from orchestrator.common.errors import InvalidArgument

from .limits import SessionLimits
from .metrics import Usage

TITLE_MAX = 200
DESCRIPTION_MAX = 10_000
PROMPT_MAX = 10_000
MODEL_IDENTIFIER_MAX = 200
MIN_DURATION_SECONDS = 60
MAX_DURATION_SECONDS = 86_400
DEFAULT_DURATION_SECONDS = 3_600
TAG_MAX = 64
MAX_TAGS = 32
MAX_RETRIES_CEILING = 10
JSON_MAX_DEPTH = 100  # protobuf's Struct refuses deeper nesting

# `provider/model`: a lower-case provider, then the model as the provider spells it. The model
# part may contain `/` and `:` because OpenCode routes such as `openrouter/meta-llama/llama-3`
# and `ollama/llama3:8b` are real model identifiers.
MODEL_IDENTIFIER_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._:/-]*$")
TAG_PATTERN = re.compile(r"^[a-z0-9._:-]+$")

_TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
)

E = TypeVar("E", bound=StrEnum)


def as_utc(moment: datetime) -> datetime:
    """The domain keeps every timestamp aware and in UTC; a naive one is a caller's bug."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no time zone; pass an aware datetime")
    return moment.astimezone(UTC)


def validate_session_id(value: str | None) -> str:
    """Empty means "choose one": a new uuid4. A given id is normalised to canonical form."""
    if not value:
        return str(uuid.uuid4())
    return _uuid(value, "session_id")


def validate_parent_id(value: str | None, session_id: str) -> str | None:
    if not value:
        return None
    parent_id = _uuid(value, "parent_id")
    if parent_id == session_id:
        raise InvalidArgument("parent_id names the session itself", field="parent_id")
    return parent_id


def validate_title(title: str) -> str:
    trimmed = title.strip()
    if not 1 <= len(trimmed) <= TITLE_MAX:
        raise InvalidArgument(
            f"title must be 1 to {TITLE_MAX} characters after trimming; got {len(trimmed)}",
            field="title",
        )
    return trimmed


def validate_required_text(value: str, field: str, why: str) -> str:
    if not value.strip():
        raise InvalidArgument(f"{field} must not be empty: {why}", field=field)
    return value


def validate_description(description: str) -> str:
    if len(description) > DESCRIPTION_MAX:
        raise InvalidArgument(
            f"description must be at most {DESCRIPTION_MAX} characters; got {len(description)}",
            field="description",
        )
    return description


def validate_initial_prompt(prompt: str) -> str:
    """Kept verbatim (whitespace may matter to the agent) but it must say something."""
    if not prompt.strip() or len(prompt) > PROMPT_MAX:
        raise InvalidArgument(
            f"initial_prompt must be 1 to {PROMPT_MAX} characters and not blank; got {len(prompt)}",
            field="initial_prompt",
        )
    return prompt


def validate_model_identifier(model_identifier: str) -> str:
    """Empty lets the agent choose; otherwise it must match MODEL_IDENTIFIER_PATTERN."""
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


def validate_max_duration(seconds: int) -> int:
    """0 means the default of one hour."""
    if seconds == 0:
        return DEFAULT_DURATION_SECONDS
    if not MIN_DURATION_SECONDS <= seconds <= MAX_DURATION_SECONDS:
        raise InvalidArgument(
            f"max_duration_seconds must be {MIN_DURATION_SECONDS} to {MAX_DURATION_SECONDS} "
            f"(or 0 for {DEFAULT_DURATION_SECONDS}); got {seconds}",
            field="max_duration_seconds",
        )
    return seconds


def validate_tags(tags: Iterable[str]) -> list[str]:
    """Duplicates are dropped (first occurrence kept) before the count is checked."""
    unique = list(dict.fromkeys(tags))
    for tag in unique:
        if not 1 <= len(tag) <= TAG_MAX or not TAG_PATTERN.match(tag):
            raise InvalidArgument(
                f"tags: {tag!r} must be 1 to {TAG_MAX} characters of a-z 0-9 . _ : -",
                field="tags",
            )
    if len(unique) > MAX_TAGS:
        raise InvalidArgument(
            f"tags: at most {MAX_TAGS} distinct tags; got {len(unique)}", field="tags"
        )
    return unique


def validate_agent_config(config: Mapping[str, str] | None) -> dict[str, str]:
    config = config or {}
    for key, value in config.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise InvalidArgument(
                f"agent_config maps non-empty names to strings; {key!r} does not",
                field="agent_config",
            )
    return dict(config)


def validate_limits(limits: SessionLimits) -> SessionLimits:
    for name in ("max_parallel_tasks", "token_budget"):
        _non_negative(getattr(limits, name), f"limits.{name}")
    _non_negative_amount(limits.cost_budget_usd, "limits.cost_budget_usd")
    if not 0 <= limits.max_retries <= MAX_RETRIES_CEILING:
        raise InvalidArgument(
            f"limits.max_retries must be 0 to {MAX_RETRIES_CEILING}; got {limits.max_retries}",
            field="limits.max_retries",
        )
    return limits


def validate_usage(usage: Usage) -> Usage:
    for name in _TOKEN_FIELDS:
        _non_negative(getattr(usage, name), f"usage.{name}")
    _non_negative_amount(usage.cost_usd, "usage.cost_usd")
    return usage


def validate_task_count(count: int | None, field: str) -> int | None:
    if count is not None:
        _non_negative(count, field)
    return count


def validate_json_object(value: Mapping[str, Any] | None, field: str) -> dict[str, Any]:
    """A deep copy of `value` after checking it is plain JSON (what a protobuf Struct holds)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{field} must be a JSON object", field=field)
    _check_json(value, field, field, depth=0)
    return copy.deepcopy(dict(value))


def validate_member(kind: type[E], value: E | str, field: str) -> E:
    """Accepts a member or its value, so callers holding strings get a clear refusal."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(kind)
        raise InvalidArgument(f"{field} {value!r} is not one of: {allowed}", field=field) from None


def _uuid(value: str, field: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidArgument(f"{field} {value!r} is not a UUID", field=field) from None


def _non_negative(value: int, field: str) -> None:
    if value < 0:
        raise InvalidArgument(f"{field} must not be negative; got {value}", field=field)


def _non_negative_amount(value: float, field: str) -> None:
    if not math.isfinite(value) or value < 0:
        raise InvalidArgument(f"{field} must be a finite amount >= 0; got {value}", field=field)


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
    kind = type(value).__name__
    raise InvalidArgument(f"{path} holds a {kind}, which is not a JSON value", field=field)
