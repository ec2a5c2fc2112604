"""The prompt OpenCode gets for a task: the task itself, then what its session says. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from orchestrator.api.task.v1 import task_pb2
from orchestrator.common.protoconv import from_struct
from orchestrator.worker.executors.base import SessionBrief

# The shared context can be large; the agent gets its beginning and can be told to read more.
MAX_CONTEXT_CHARS = 20_000
# Executor settings in the task's input that are not instructions for the agent.
NOT_FOR_THE_AGENT = frozenset({"command", "timeout_seconds"})
CLOSING = (
    "Work in the current directory. Make the changes the task asks for with your tools, and "
    "finish with a short summary of what you changed."
)


def task_title(task: task_pb2.Task) -> str:
    return task.title or f"task {task.id}"


def build_prompt(task: task_pb2.Task, session: SessionBrief | None) -> str:
    sections = [f"# Task: {task_title(task)}"]
    if task.description.strip() and task.description.strip() != task.title.strip():
        sections.append(task.description.strip())
    task_input = {k: v for k, v in from_struct(task.input).items() if k not in NOT_FOR_THE_AGENT}
    if task_input:
        sections.append("## Input\n" + _json_block(task_input))
    if session is not None:
        sections.extend(_session_sections(session))
    sections.append(CLOSING)
    return "\n\n".join(sections)


def _session_sections(session: SessionBrief) -> list[str]:
    found: list[str] = []
    heading = f"## Session: {session.title}" if session.title else "## Session"
    if session.prompt.strip():
        found.append(
            f"{heading}\nThis task is one step of the session's goal:\n\n{session.prompt.strip()}"
        )
    if session.context:
        found.append("## Shared context of the session\n" + _json_block(session.context))
    return found


def _json_block(value: Mapping[str, Any]) -> str:
    text = json.dumps(value, indent=2, sort_keys=True, default=str)
    if len(text) > MAX_CONTEXT_CHARS:
        text = text[:MAX_CONTEXT_CHARS] + "\n… (cut)"
    return f"```json\n{text}\n```"
