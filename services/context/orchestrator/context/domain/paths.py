"""Dot paths (`config.model`) into a context's data: each segment is an object key.

The empty path is the whole document. A path may only pass through objects: following a key
into a string, number, list or null is the caller's mistake, refused naming where it happened.
"""

from __future__ import annotations

import copy
from typing import Any

from orchestrator.common.errors import InvalidArgument

from .limits import MAX_DEPTH
from .values import MISSING, key_problem, kind_of

Path = tuple[str, ...]


def parse_path(path: str, field: str) -> Path:
    if path == "":
        return ()
    segments = tuple(path.split("."))
    if len(segments) > MAX_DEPTH:
        raise InvalidArgument(
            f"path {path[:80]!r} has {len(segments)} segments; at most {MAX_DEPTH} are allowed",
            field=field,
        )
    for segment in segments:
        if (problem := key_problem(segment)) is not None:
            why = "it has an empty segment" if segment == "" else problem
            raise InvalidArgument(f"path {path!r} is not a dot path: {why}", field=field)
    return segments


def join(segments: Path) -> str:
    return ".".join(segments)


def is_within(path: str, prefix: str) -> bool:
    """True when `path` is `prefix` or lies below it."""
    return prefix == "" or path == prefix or path.startswith(prefix + ".")


def related(a: str, b: str) -> bool:
    """True when a write to one path can change the value at the other."""
    return is_within(a, b) or is_within(b, a)


def _parent(doc: dict[str, Any], segments: Path, field: str, create: bool) -> Any:
    """The object holding the last segment; MISSING when an object on the way is absent
    (and not created). Raises when the way passes through a value that is not an object."""
    node: Any = doc
    for depth, key in enumerate(segments[:-1]):
        child = node.get(key, MISSING)
        if child is MISSING:
            if not create:
                return MISSING
            child = node[key] = {}
        elif not isinstance(child, dict):
            crossed = join(segments[: depth + 1])
            raise InvalidArgument(
                f"path {join(segments)!r} goes through {crossed!r}, which holds a "
                f"{kind_of(child)}, not an object; only objects have keys to follow",
                field=field,
            )
        node = child
    return node


def get_at(doc: dict[str, Any], segments: Path, field: str) -> Any:
    """The value at the path, or MISSING."""
    if not segments:
        return doc
    parent = _parent(doc, segments, field, create=False)
    return MISSING if parent is MISSING else parent.get(segments[-1], MISSING)


def lenient_get(doc: dict[str, Any] | None, path: str) -> Any:
    """As get_at, but a path through a non-object (or no document) is simply MISSING."""
    if doc is None:
        return MISSING
    node: Any = doc
    for key in path.split(".") if path else ():
        if not isinstance(node, dict) or key not in node:
            return MISSING
        node = node[key]
    return node


def set_at(doc: dict[str, Any], segments: Path, value: Any, field: str) -> dict[str, Any]:
    """Sets the value in place, creating missing parent objects; returns the document, which
    is a new one when the path is empty (the value then replaces the whole document)."""
    if not segments:
        if not isinstance(value, dict):
            raise InvalidArgument(
                f"the empty path is the whole document, which must be an object, "
                f"not a {kind_of(value)}",
                field=field,
            )
        return copy.deepcopy(value)
    parent = _parent(doc, segments, field, create=True)
    parent[segments[-1]] = copy.deepcopy(value)
    return doc


def delete_at(doc: dict[str, Any], segments: Path, field: str) -> dict[str, Any]:
    """Removes the path in place (absent: nothing happens); the empty path empties the document."""
    if not segments:
        return {}
    parent = _parent(doc, segments, field, create=False)
    if parent is not MISSING:
        parent.pop(segments[-1], None)
    return doc
