"""Keyset pagination: page sizes and the opaque tokens that carry the last key seen."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from orchestrator.common.errors import InvalidArgument

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_token: str
    total: int


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument("page_size must not be negative", field="page.page_size")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_token(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode()


def decode_token(token: str, arity: int) -> list[Any]:
    try:
        parts = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument("page_token is not one this server issued", field="page") from exc
    if not isinstance(parts, list) or len(parts) != arity:
        raise InvalidArgument("page_token is not one this server issued", field="page")
    return parts
