"""The prompt OpenCode gets: the task first, then the session's goal and shared context."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2

from orchestrator.api.task.v1 import task_pb2
from orchestrator.worker.executors.base import SessionBrief
from orchestrator.worker.executors.opencode.prompt import (
    MAX_CONTEXT_CHARS,
    build_prompt,
    task_title,
)


def _task(title: str = "Split billing", description: str = "", **fields: Any) -> task_pb2.Task:
    data = struct_pb2.Struct()
    data.update(fields)
    return task_pb2.Task(id="t-1", title=title, description=description, input=data)


def test_the_task_comes_first_with_its_description_and_input() -> None:
    prompt = build_prompt(
        _task(description="Move invoices out.", files=["billing.py"], command="make"), None
    )
    assert prompt.startswith("# Task: Split billing\n\nMove invoices out.")
    assert '"files": [\n    "billing.py"\n  ]' in prompt
    # Executor settings are not instructions.
    assert "command" not in prompt and "make" not in prompt
    assert "## Session" not in prompt


def test_a_description_equal_to_the_title_is_not_repeated() -> None:
    prompt = build_prompt(_task(description="Split billing"), None)
    assert prompt.count("Split billing") == 1


def test_the_session_goal_and_context_follow() -> None:
    brief = SessionBrief(
        id="s-1", title="IND-42", prompt="Keep billing tidy.", context={"style": {"tabs": False}}
    )
    prompt = build_prompt(_task(), brief)
    task_at, goal_at = prompt.index("# Task"), prompt.index("## Session: IND-42")
    assert task_at < goal_at < prompt.index("## Shared context")
    assert "Keep billing tidy." in prompt and '"tabs": false' in prompt


def test_a_huge_context_is_cut() -> None:
    brief = SessionBrief(id="s-1", context={"blob": "x" * (MAX_CONTEXT_CHARS * 2)})
    prompt = build_prompt(_task(), brief)
    assert "… (cut)" in prompt and len(prompt) < MAX_CONTEXT_CHARS + 1_000


def test_an_untitled_task_is_named_by_its_id() -> None:
    assert task_title(task_pb2.Task(id="t-9")) == "task t-9"


def test_the_session_model_wins_over_the_worker_default() -> None:
    import asyncio
    from pathlib import Path

    from orchestrator.worker.executors.base import Job
    from orchestrator.worker.executors.opencode.client import OpenCodeClient
    from orchestrator.worker.executors.opencode.executor import OpenCodeExecutor

    def job(model: str) -> Job:
        brief = SessionBrief(id="s-1", model=model)
        return Job(task_pb2.Task(id="t-1"), Path("."), asyncio.Event(), session=brief)

    worker_default = OpenCodeExecutor(OpenCodeClient("http://127.0.0.1:9"), model="a/worker")
    assert worker_default.model_for(job("b/session")) == "b/session"
    assert worker_default.model_for(job("")) == "a/worker"
    assert OpenCodeExecutor(OpenCodeClient("http://127.0.0.1:9")).model_for(job("")) is None
