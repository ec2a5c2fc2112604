"""A scripted OpenAI-compatible chat-completions server: the only stand-in in the OpenCode tests.

OpenCode talks to it as to any `@ai-sdk/openai-compatible` provider. Every answer is streamed as
SSE `chat.completion.chunk`s, ends with a usage chunk and `[DONE]`, and may carry tool calls, so
OpenCode really writes, edits and runs things. A test scripts the replies by a phrase of the last
user message (a task title, say); the n-th reply is used after n assistant turns of that prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from orchestrator.common.stack import pick_free_port

MODEL = "scripted"
TITLE_REPLY = "Scripted work"
UNSCRIPTED_REPLY = "Nothing is scripted for this prompt."


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    input_tokens: int = 100
    output_tokens: int = 20
    # Seconds to wait before the first chunk: keeps a task running for cancel tests.
    delay: float = 0.0


def write(path: str, content: str) -> Reply:
    return Reply(tool_calls=(ToolCall("write", {"filePath": path, "content": content}),))


def edit(path: str, old: str, new: str) -> Reply:
    return Reply(
        tool_calls=(ToolCall("edit", {"filePath": path, "oldString": old, "newString": new}),)
    )


def bash(command: str, description: str = "runs a command") -> Reply:
    return Reply(tool_calls=(ToolCall("bash", {"command": command, "description": description}),))


@dataclass
class Exchange:
    """One request the stand-in answered, for the test to inspect."""

    prompt: str
    step: int
    tools: list[str]
    reply: Reply
    body: dict[str, Any] = field(repr=False)


class LLMStandIn:
    def __init__(self) -> None:
        self.port = pick_free_port()
        self.exchanges: list[Exchange] = []
        self._scripts: list[tuple[str, list[Reply]]] = []
        self._ids = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, phrase: str, *replies: Reply) -> None:
        """Answers prompts containing `phrase` with `replies`, one per assistant turn; once they
        run out, with a closing text."""
        self._scripts.insert(0, (phrase, list(replies)))

    def exchanges_for(self, phrase: str) -> list[Exchange]:
        return [e for e in self.exchanges if phrase in e.prompt]

    def reply_for(self, body: dict[str, Any]) -> Exchange:
        messages: list[dict[str, Any]] = body.get("messages", [])
        tools = [t.get("function", {}).get("name", "") for t in body.get("tools") or []]
        users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
        prompt = _text(messages[users[-1]]) if users else ""
        step = sum(1 for m in messages[users[-1] + 1 :] if m.get("role") == "assistant")
        if not tools:  # OpenCode's own helper calls: titles and summaries
            reply = Reply(text=TITLE_REPLY, input_tokens=10, output_tokens=3)
        else:
            reply = self._scripted(prompt, step)
        exchange = Exchange(prompt=prompt, step=step, tools=tools, reply=reply, body=body)
        self.exchanges.append(exchange)
        return exchange

    def _scripted(self, prompt: str, step: int) -> Reply:
        for phrase, replies in self._scripts:
            if phrase in prompt:
                return replies[step] if step < len(replies) else Reply(text=f"Done: {phrase}.")
        return Reply(text=UNSCRIPTED_REPLY)

    async def _completions(self, request: Request) -> Response:
        body = await request.json()
        exchange = self.reply_for(body)
        if not body.get("stream"):
            return JSONResponse(_whole(exchange.reply, next(self._ids)))
        return StreamingResponse(
            self._chunks(exchange.reply, next(self._ids)), media_type="text/event-stream"
        )

    async def _chunks(self, reply: Reply, number: int) -> AsyncIterator[str]:
        if reply.delay:
            await asyncio.sleep(reply.delay)
        for chunk in _stream(reply, f"chatcmpl-{number}"):
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def start(self) -> None:
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._completions, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        for _ in range(200):
            if self._server.started:
                return
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)
        raise RuntimeError("the LLM stand-in did not start")

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            # Streams held open by a client would keep a graceful exit waiting.
            self._server.force_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@contextlib.asynccontextmanager
async def running_standin() -> AsyncIterator[LLMStandIn]:
    standin = LLMStandIn()
    await standin.start()
    try:
        yield standin
    finally:
        await standin.stop()


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _base(chunk_id: str) -> dict[str, Any]:
    return {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL,
    }


def _usage(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
    }


def _stream(reply: Reply, chunk_id: str) -> Sequence[dict[str, Any]]:
    chunks: list[dict[str, Any]] = [
        {**_base(chunk_id), "choices": [{"index": 0, "delta": {"role": "assistant"}}]}
    ]
    if reply.text:
        for piece in _pieces(reply.text):
            text = {"content": piece}
            chunks.append({**_base(chunk_id), "choices": [{"index": 0, "delta": text}]})
    for index, call in enumerate(reply.tool_calls):
        delta = {
            "tool_calls": [
                {
                    "index": index,
                    "id": f"call_{chunk_id}_{index}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
            ]
        }
        chunks.append({**_base(chunk_id), "choices": [{"index": 0, "delta": delta}]})
    finish = "tool_calls" if reply.tool_calls else "stop"
    chunks.append(
        {**_base(chunk_id), "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
    )
    chunks.append({**_base(chunk_id), "choices": [], "usage": _usage(reply)})
    return chunks


def _pieces(text: str, size: int = 16) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _whole(reply: Reply, number: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call_{number}_{i}",
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for i, c in enumerate(reply.tool_calls)
        ]
    finish = "tool_calls" if reply.tool_calls else "stop"
    return {
        "id": f"chatcmpl-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": _usage(reply),
    }
