"""OpenCode's event stream read into checkpoints, usage, permission requests and the end."""

from __future__ import annotations

from typing import Any

from orchestrator.worker.executors.opencode.events import (
    MAX_TOOL_CHECKPOINTS,
    Finished,
    PermissionAsked,
    SessionProgress,
    SseDecoder,
    ToolFinished,
    final_text,
    usage_of_messages,
)
from orchestrator.worker.executors.opencode.permissions import PermissionRequest

SES = "ses_main"


def _tool(part_id: str, status: str, tool: str = "write", session: str = SES) -> dict[str, Any]:
    state: dict[str, Any] = {"status": status, "title": "calc.py"}
    if status == "error":
        state["error"] = "rejected"
    part = {"id": part_id, "sessionID": session, "type": "tool", "tool": tool, "state": state}
    return {"type": "message.part.updated", "properties": {"sessionID": session, "part": part}}


def _step(part_id: str, inp: int, out: int, cost: float, session: str = SES) -> dict[str, Any]:
    tokens = {"input": inp, "output": out, "reasoning": 1, "cache": {"read": 2, "write": 3}}
    part: dict[str, Any] = {"id": part_id, "sessionID": session, "type": "step-finish"}
    part.update(tokens=tokens, cost=cost)
    return {"type": "message.part.updated", "properties": {"sessionID": session, "part": part}}


def _event(kind: str, **props: Any) -> dict[str, Any]:
    return {"type": kind, "properties": props}


def test_sse_lines_become_events() -> None:
    decoder = SseDecoder()
    lines = [
        ": comment",
        'data: {"type": "server.connected", "properties": {}}',
        "",
        "event: message",
        'data: {"type": "a",',
        'data: "properties": {}}',
        "",
        "data: not json",
        "",
        "",
    ]
    events = [e for e in (decoder.feed(line) for line in lines) if e is not None]
    assert events == [
        {"type": "server.connected", "properties": {}},
        {"type": "a", "properties": {}},
    ]


def test_each_finished_tool_call_is_one_checkpoint() -> None:
    progress = SessionProgress(SES)
    assert progress.apply(_tool("p1", "pending")) == []
    assert progress.apply(_tool("p1", "running")) == []
    done = progress.apply(_tool("p1", "completed"))
    assert done == [ToolFinished("write", "completed", "calc.py")]
    # The same part again (OpenCode repeats updates) is not a second checkpoint.
    assert progress.apply(_tool("p1", "completed")) == []
    [failed] = progress.apply(_tool("p2", "error", tool="bash"))
    assert isinstance(failed, ToolFinished)
    assert failed.checkpoint() == (
        "tool:bash",
        {"tool": "bash", "status": "error", "title": "calc.py", "error": "rejected"},
    )
    assert (progress.tools_finished, progress.tool_errors) == (2, 1)


def test_checkpoints_stop_after_the_cap_but_tools_are_still_counted() -> None:
    progress = SessionProgress(SES)
    notices = [progress.apply(_tool(f"p{i}", "completed")) for i in range(MAX_TOOL_CHECKPOINTS + 5)]
    assert sum(len(n) for n in notices) == MAX_TOOL_CHECKPOINTS
    assert progress.tools_finished == MAX_TOOL_CHECKPOINTS + 5


def test_usage_sums_the_steps_once_each() -> None:
    progress = SessionProgress(SES)
    progress.apply(_step("s1", 100, 20, 0.5))
    progress.apply(_step("s1", 100, 20, 0.5))  # repeated update of the same step
    progress.apply(_step("s2", 50, 10, 0.25))
    usage = progress.usage
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens) == (150, 30, 2)
    assert (usage.cache_read_tokens, usage.cache_write_tokens) == (4, 6)
    assert usage.cost_usd == 0.75


def test_sub_sessions_are_followed_and_others_ignored() -> None:
    progress = SessionProgress(SES)
    child = {"id": "ses_child", "parentID": SES}
    progress.apply(_event("session.created", sessionID="ses_child", info=child))
    progress.apply(_step("s1", 10, 1, 0.0, session="ses_child"))
    progress.apply(_step("s2", 99, 9, 0.0, session="ses_stranger"))
    asked = progress.apply(
        _event("permission.asked", id="per_1", sessionID="ses_child", permission="bash")
    )
    assert asked == [PermissionAsked(PermissionRequest("per_1", "ses_child", "bash"))]
    assert progress.apply(_event("permission.asked", id="x", sessionID="ses_stranger")) == []
    assert progress.usage.input_tokens == 10
    # A sub-session going idle is not the end of the run.
    assert progress.apply(_event("session.idle", sessionID="ses_child")) == []


def test_idle_ends_the_run_once() -> None:
    progress = SessionProgress(SES)
    progress.apply(_event("session.status", sessionID=SES, status={"type": "busy"}))
    assert progress.started and not progress.finished
    assert progress.apply(_event("session.status", sessionID=SES, status={"type": "idle"})) == [
        Finished()
    ]
    assert progress.apply(_event("session.idle", sessionID=SES)) == []
    assert progress.finished


def test_errors_are_kept_and_an_abort_is_told_apart() -> None:
    progress = SessionProgress(SES)
    error = {"name": "APIError", "data": {"message": "rate limited"}}
    progress.apply(_event("session.error", sessionID=SES, error=error))
    assert progress.error == "APIError: rate limited" and not progress.aborted
    aborted = SessionProgress(SES)
    error = {"name": "MessageAbortedError", "data": {"message": "Aborted"}}
    aborted.apply(_event("session.error", sessionID=SES, error=error))
    assert aborted.aborted and aborted.error == ""


def test_messages_give_usage_and_the_final_text() -> None:
    tokens = {"input": 100, "output": 20, "reasoning": 0, "cache": {"read": 5, "write": 0}}
    messages: list[dict[str, Any]] = [
        {"info": {"role": "user"}, "parts": [{"type": "text", "text": "do it"}]},
        {"info": {"role": "assistant", "tokens": tokens, "cost": 0.1}, "parts": []},
        {
            "info": {"role": "assistant", "tokens": tokens, "cost": 0.1},
            "parts": [{"type": "text", "text": "Done "}, {"type": "text", "text": "twice."}],
        },
        {"info": {"role": "assistant", "tokens": tokens}, "parts": [{"type": "step-finish"}]},
    ]
    usage = usage_of_messages(messages)
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (300, 60, 15)
    assert round(usage.cost_usd, 6) == 0.2
    assert final_text(messages) == "Done twice."
    assert final_text(messages[:1]) == ""
