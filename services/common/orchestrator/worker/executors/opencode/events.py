"""OpenCode's event stream, read: SSE framing, and what the events say about one session's run.

Pure (no I/O): the executor feeds events in and acts on the notices that come out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.api.common.v1 import common_pb2
from orchestrator.worker.executors.opencode.permissions import PermissionRequest

# A long run must not flood the session with checkpoints: the first tool calls are recorded,
# the rest only counted.
MAX_TOOL_CHECKPOINTS = 20
FINISHED_TOOL_STATES = ("completed", "error")
ABORTED_ERROR = "MessageAbortedError"


class SseDecoder:
    """Turns the lines of a `text/event-stream` into the JSON objects of its `data:` fields."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> dict[str, Any] | None:
        """One line (without its newline); returns an event when a blank line completes one."""
        if line == "":
            if not self._data:
                return None
            raw, self._data = "\n".join(self._data), []
            try:
                event = json.loads(raw)
            except json.JSONDecodeError:
                return None
            return event if isinstance(event, dict) else None
        if line.startswith("data:"):
            self._data.append(line[5:].removeprefix(" "))
        # Comments (":…"), `event:`, `id:` and `retry:` carry nothing OpenCode relies on.
        return None


@dataclass(frozen=True)
class ToolFinished:
    tool: str
    status: str
    title: str
    error: str = ""

    def checkpoint(self) -> tuple[str, dict[str, Any]]:
        data: dict[str, Any] = {"tool": self.tool, "status": self.status, "title": self.title}
        if self.error:
            data["error"] = self.error[:500]
        return f"tool:{self.tool}", data


@dataclass(frozen=True)
class PermissionAsked:
    request: PermissionRequest


@dataclass(frozen=True)
class Finished:
    """The session went idle: its prompt is done, failed or was aborted."""


Notice = ToolFinished | PermissionAsked | Finished


@dataclass
class StepUsage:
    input: int = 0
    output: int = 0
    reasoning: int = 0
    cache_read: int = 0
    cache_write: int = 0
    cost: float = 0.0

    @classmethod
    def of(cls, tokens: Mapping[str, Any], cost: Any) -> StepUsage:
        cache = tokens.get("cache") or {}
        return cls(
            input=int(tokens.get("input") or 0),
            output=int(tokens.get("output") or 0),
            reasoning=int(tokens.get("reasoning") or 0),
            cache_read=int(cache.get("read") or 0),
            cache_write=int(cache.get("write") or 0),
            cost=float(cost or 0.0),
        )


def total_usage(steps: list[StepUsage]) -> common_pb2.Usage:
    return common_pb2.Usage(
        input_tokens=sum(s.input for s in steps),
        output_tokens=sum(s.output for s in steps),
        reasoning_tokens=sum(s.reasoning for s in steps),
        cache_read_tokens=sum(s.cache_read for s in steps),
        cache_write_tokens=sum(s.cache_write for s in steps),
        cost_usd=sum(s.cost for s in steps),
    )


def usage_of_messages(messages: Sequence[Mapping[str, Any]]) -> common_pb2.Usage:
    """Tokens and cost of the assistant messages of `GET /session/{id}/message`."""
    steps = [
        StepUsage.of(m["info"].get("tokens") or {}, m["info"].get("cost"))
        for m in messages
        if m.get("info", {}).get("role") == "assistant"
    ]
    return total_usage(steps)


def final_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text of the last assistant message that has any."""
    for message in reversed(messages):
        if message.get("info", {}).get("role") != "assistant":
            continue
        parts = message.get("parts") or []
        text = "".join(p.get("text", "") for p in parts if p.get("type") == "text")
        if text.strip():
            return text.strip()
    return ""


@dataclass
class SessionProgress:
    """Folds the event stream into the state of one OpenCode session and of the sub-sessions it
    spawns (the `task` tool), whose permission requests must be answered too."""

    session_id: str
    session_ids: set[str] = field(default_factory=set)
    steps: dict[str, StepUsage] = field(default_factory=dict)
    tools_finished: int = 0
    tool_errors: int = 0
    # The session's own error (OpenCode's error name and message); empty when none.
    error: str = ""
    aborted: bool = False
    # Seen busy: from then on, "not busy" means the prompt is over.
    started: bool = False
    finished: bool = False
    _tools_seen: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.session_ids.add(self.session_id)

    @property
    def usage(self) -> common_pb2.Usage:
        return total_usage(list(self.steps.values()))

    def apply(self, event: Mapping[str, Any]) -> list[Notice]:
        kind = event.get("type", "")
        props: Mapping[str, Any] = event.get("properties") or {}
        if kind in ("session.created", "session.updated"):
            info = props.get("info") or {}
            if info.get("parentID") in self.session_ids and info.get("id"):
                self.session_ids.add(str(info["id"]))
            return []
        if kind == "message.part.updated":
            return self._part(props.get("part") or {})
        if props.get("sessionID") not in self.session_ids:
            return []
        if kind == "permission.asked":
            return [PermissionAsked(PermissionRequest.from_event(props))]
        if kind == "session.error" and props.get("sessionID") == self.session_id:
            self._error(props.get("error") or {})
            return []
        if props.get("sessionID") != self.session_id:
            return []
        if kind == "session.status" and (props.get("status") or {}).get("type") == "busy":
            self.started = True
            return []
        if _is_idle(kind, props):
            if self.finished:
                return []
            self.finished = True
            return [Finished()]
        return []

    def _part(self, part: Mapping[str, Any]) -> list[Notice]:
        if part.get("sessionID") not in self.session_ids:
            return []
        if part.get("type") == "step-finish":
            self.steps[str(part.get("id"))] = StepUsage.of(
                part.get("tokens") or {}, part.get("cost")
            )
            return []
        if part.get("type") != "tool":
            return []
        state = part.get("state") or {}
        status = state.get("status")
        part_id = str(part.get("id"))
        if status not in FINISHED_TOOL_STATES or part_id in self._tools_seen:
            return []
        self._tools_seen.add(part_id)
        self.tools_finished += 1
        if status == "error":
            self.tool_errors += 1
        if self.tools_finished > MAX_TOOL_CHECKPOINTS:
            return []
        title = str(state.get("title") or "")
        return [ToolFinished(str(part.get("tool")), status, title, str(state.get("error") or ""))]

    def _error(self, error: Mapping[str, Any]) -> None:
        name = str(error.get("name") or "error")
        if name == ABORTED_ERROR:
            self.aborted = True
            return
        data = error.get("data") or {}
        message = str(data.get("message") or "") if isinstance(data, Mapping) else ""
        self.error = f"{name}: {message}" if message else name


def _is_idle(kind: str, props: Mapping[str, Any]) -> bool:
    if kind == "session.idle":
        return True
    status = props.get("status") or {}
    return kind == "session.status" and status.get("type") == "idle"
