"""How a session's permission policy answers OpenCode's permission requests. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# OpenCode's answers to `POST /permission/{id}/reply`.
ONCE = "once"
REJECT = "reject"
# Patterns shown in a failure reason; a long command is cut so the reason stays one line.
MAX_DESCRIBED = 200


@dataclass(frozen=True)
class PermissionRequest:
    id: str
    session_id: str
    # What is asked for: bash, edit, webfetch, external_directory, …
    permission: str
    patterns: tuple[str, ...] = ()

    @classmethod
    def from_event(cls, properties: Mapping[str, Any]) -> PermissionRequest:
        patterns = properties.get("patterns") or ()
        return cls(
            id=str(properties.get("id", "")),
            session_id=str(properties.get("sessionID", "")),
            permission=str(properties.get("permission", "")),
            patterns=tuple(str(p) for p in patterns),
        )

    def describe(self) -> str:
        if not self.patterns:
            return self.permission
        shown = "; ".join(self.patterns)
        if len(shown) > MAX_DESCRIBED:
            shown = shown[: MAX_DESCRIBED - 1] + "…"
        return f"{self.permission} ({shown})"


@dataclass(frozen=True)
class Decision:
    reply: str
    # Why the task must fail because of this request; empty when it may go on.
    failure: str = ""
    # Nobody here may answer: stop the run now instead of letting the agent carry on.
    stop: bool = False


def decide(policy: str, request: PermissionRequest) -> Decision:
    """allow grants the request once; deny refuses it and fails the task; escalate (and any
    policy not understood) refuses it and stops the task, since a headless run has no human to
    ask and OpenCode would otherwise wait forever."""
    if policy == "allow":
        return Decision(ONCE)
    if policy == "deny":
        return Decision(
            REJECT, failure=f"denied by the session's permission policy: {request.describe()}"
        )
    return Decision(REJECT, failure=f"needs a human: {request.describe()}", stop=True)
