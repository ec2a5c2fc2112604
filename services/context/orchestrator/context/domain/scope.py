"""Who a context belongs to: its scope, its owner, and the other scopes it is shared with."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from orchestrator.common.errors import InvalidArgument

from .limits import MAX_OWNER_LENGTH


class ContextScope(StrEnum):
    """Values are the proto names without their prefix, lower-cased."""

    SESSION = "session"
    AGENT = "agent"
    GLOBAL = "global"
    TEMPORARY = "temporary"


@dataclass(frozen=True, slots=True)
class Share:
    """Another scope and owner that uses the very same context (no copy)."""

    scope: ContextScope
    owner_id: str
    shared_by: str
    shared_at: datetime


_OWNER = re.compile(rf"^[A-Za-z0-9._:@-]{{1,{MAX_OWNER_LENGTH}}}$")


def validate_owner(scope: ContextScope, owner_id: str, field: str = "owner_id") -> str:
    """SESSION: the session's UUID (canonical form). AGENT: the agent's id. GLOBAL: empty.
    TEMPORARY: optional. Ids are 1 to 128 characters of A-Z a-z 0-9 . _ : @ -."""
    if scope is ContextScope.GLOBAL:
        if owner_id:
            raise InvalidArgument(
                f"{field} must be empty for a GLOBAL context, which nobody owns; got {owner_id!r}",
                field=field,
            )
        return ""
    if scope is ContextScope.SESSION:
        try:
            return str(uuid.UUID(owner_id))
        except ValueError:
            raise InvalidArgument(
                f"{field} of a SESSION context is the session's UUID; got {owner_id!r}",
                field=field,
            ) from None
    if scope is ContextScope.TEMPORARY and not owner_id:
        return ""
    if not _OWNER.match(owner_id):
        raise InvalidArgument(
            f"{field} {owner_id[:80]!r} must be 1 to {MAX_OWNER_LENGTH} characters of "
            f"A-Z a-z 0-9 . _ : @ - (an {scope.upper()} context needs its owner's id)",
            field=field,
        )
    return owner_id


def session_of(scope: ContextScope, owner_id: str) -> str:
    """The session an event of this context belongs to: the owner of a SESSION context."""
    return owner_id if scope is ContextScope.SESSION else ""
