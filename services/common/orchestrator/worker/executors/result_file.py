"""The result file a shell task may write: `$ORCH_RESULT_FILE`, a JSON object.

Its `usage` ({"input_tokens": 500, "output_tokens": 200, "cost_usd": 0.01}, the fields of
`orchestrator.common.v1.Usage`) is what the run spent, added to the task's and the session's
totals; its `context` ({"api.base_url": "http://…", "notes": {…}}) is shared with the session:
each value is set at its dot path in the session's default context; every other field joins
the task's result. A file that cannot be used never fails the run: the result says what was
wrong with it under `result_file_error`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from orchestrator.api.common.v1 import common_pb2

ENV_NAME = "ORCH_RESULT_FILE"
MAX_BYTES = 256 * 1024


def read_result_file(path: Path) -> tuple[common_pb2.Usage | None, dict[str, Any]]:
    """The usage and the other fields the command wrote to `path`; (None, {}) when it wrote
    nothing."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None, {}
    except OSError as exc:
        return None, _error(f"could not be read: {exc}")
    if len(raw) > MAX_BYTES:
        return None, _error(f"is larger than {MAX_BYTES} bytes")
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        return None, _error(f"is not JSON: {exc}")
    if not isinstance(doc, dict):
        return None, _error(f"must hold a JSON object, not a {type(doc).__name__}")
    details = dict(doc)
    spent = details.pop("usage", None)
    if spent is None:
        return None, details
    try:
        return usage_of(spent), details
    except ValueError as exc:
        return None, {**details, **_error(f"usage: {exc}")}


def usage_of(doc: object) -> common_pb2.Usage:
    """A Usage from its JSON form; ValueError naming what is wrong."""
    if not isinstance(doc, dict):
        raise ValueError("must be a JSON object")
    try:
        usage = json_format.ParseDict(doc, common_pb2.Usage())
    except json_format.ParseError as exc:
        raise ValueError(str(exc)) from None
    for field, value in usage.ListFields():
        if value < 0 or (isinstance(value, float) and not math.isfinite(value)):
            raise ValueError(f"{field.name} must be a finite number >= 0, got {value}")
    return usage


def _error(what: str) -> dict[str, Any]:
    return {"result_file_error": f"{ENV_NAME} {what}"}


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def split_context(details: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the result's fields, the values to share) from what the result file held: its
    `context` object, keyed by non-empty dot paths. Anything else under `context` is reported
    in the result (`result_file_error`) and shares nothing."""
    rest = dict(details)
    shared = rest.pop("context", None)
    if shared is None:
        return rest, {}
    if not isinstance(shared, dict):
        return {**rest, **_error(f"context must be a JSON object, not {type(shared).__name__}")}, {}
    bad = [k for k in shared if not k or k.startswith(".") or k.endswith(".") or ".." in k]
    if bad:
        return {**rest, **_error(f"context: {bad[0]!r} is not a dot path")}, {}
    return rest, shared
