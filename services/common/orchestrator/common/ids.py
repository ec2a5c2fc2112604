"""Ids more than one service derives the same way."""

from __future__ import annotations

import uuid


def root_task_id(session_id: str) -> str:
    """The root task of a session: the task service creates it with this id when the session
    starts (or finds it planned ahead), and the session service ends the session when it
    ends. Top-level tasks added through the API have other ids."""
    return str(uuid.uuid5(uuid.UUID(session_id), "root"))


def default_context_id(session_id: str) -> str:
    """The id workers create a session's default (unnamed) context with when it has none, so
    two workers creating it at once make one context."""
    return str(uuid.uuid5(uuid.UUID(session_id), "context"))
