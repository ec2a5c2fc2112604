"""Keyset pagination: page sizes and the opaque tokens that carry the last key seen."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from orchestrator.common.errors import InvalidArgument

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; `next_token` is empty on the last page."""

    items: list[T]
    next_token: str
    total: int


def page_size(requested: int) -> int:
    """The size to use for a requested one: 0 means the default; capped at MAX_PAGE_SIZE."""
    if requested < 0:
        raise InvalidArgument("page_size must not be negative", field="page.page_size")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_token(*parts: Any) -> str:
    """An opaque token carrying the keyset position (JSON-serialisable parts)."""
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode()


def decode_token(token: str, arity: int) -> list[Any]:
    try:
        parts = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument("page_token is not one this server issued", field="page") from exc
    if not isinstance(parts, list) or len(parts) != arity:
        raise InvalidArgument("page_token is not one this server issued", field="page")
    return parts
