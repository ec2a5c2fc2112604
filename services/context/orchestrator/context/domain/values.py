"""JSON values as the domain holds them: plain dicts, lists, strings, numbers, booleans, None.

`MISSING` stands for "no value here", which is not JSON null.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from typing import Any, Final

from orchestrator.common.errors import InvalidArgument

from .limits import MAX_DEPTH, MAX_KEY_LENGTH


class _Missing(enum.Enum):
    MISSING = "missing"

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing.MISSING


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: 1 equals 1.0, but true is not 1 and a list is no object."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def json_size(value: Any) -> int:
    """Bytes of the compact UTF-8 JSON text; 0 for MISSING."""
    if value is MISSING:
        return 0
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def kind_of(value: Any) -> str:
    """What a value is, in JSON's words, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def key_problem(key: object) -> str | None:
    """Why `key` cannot be an object key of a context, or None when it can."""
    if not isinstance(key, str):
        return f"key {key!r} is not a string"
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        return f"key {key[:40]!r} must be 1 to {MAX_KEY_LENGTH} characters; got {len(key)}"
    if "." in key:
        return f"key {key!r} contains a dot, which separates path segments"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        return f"key {key!r} contains a control character"
    return None


def check_json(value: Any, where: str, field: str, depth: int) -> None:
    """Refuses what a context cannot hold: non-JSON values, NaN, bad keys, nesting too deep.

    `depth` is how many levels down `value` sits (the segments of its path)."""
    if depth > MAX_DEPTH:
        raise InvalidArgument(
            f"{where} is nested {depth} levels deep; at most {MAX_DEPTH} levels are allowed",
            field=field,
        )
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument(f"{where} is {value}; JSON has no NaN or infinity", field=field)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if (problem := key_problem(key)) is not None:
                raise InvalidArgument(f"{where or 'the document'}: {problem}", field=field)
            check_json(item, _join(where, key), field, depth + 1)
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_json(item, f"{where}[{index}]", field, depth + 1)
        return
    raise InvalidArgument(f"{where} holds a {kind_of(value)}, not a JSON value", field=field)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
