"""The HTTP API of `opencode serve` (v1 routes), with retries, backoff and a circuit breaker.

Connection errors and 5xx answers are transient: a call is retried with backoff, and after
repeated failures the breaker stops calling for a while. Calls that are not idempotent (create
a session, send a prompt) are retried only when the server cannot have acted on them: the
connection was never made, or it answered 502/503/504.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from orchestrator.worker.executors.opencode.breaker import (
    Backoff,
    CircuitBreaker,
    CircuitOpenError,
)
from orchestrator.worker.executors.opencode.events import SseDecoder

log = logging.getLogger(__name__)

ATTEMPTS = 4
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# The event stream is quiet between runs; heartbeats arrive every few seconds.
STREAM_TIMEOUT = httpx.Timeout(None, connect=5.0)
NOT_ACTED_ON = (502, 503, 504)
# Put on the event queue after the stream was re-opened: events may have been missed.
RECONNECTED = "stream.reconnected"
Sleep = Callable[[float], Awaitable[None]]


class OpenCodeError(RuntimeError):
    pass


class OpenCodeUnavailable(OpenCodeError):
    """The server could not be reached or kept failing; a later attempt may succeed."""


class OpenCodeRefused(OpenCodeError):
    """The server answered 4xx (or a final 5xx): the same call will not succeed."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"OpenCode answered {status}: {body[:300]}")
        self.status = status


class OpenCodeClient:
    def __init__(
        self,
        base_url: str,
        *,
        attempts: int = ATTEMPTS,
        backoff: Backoff | None = None,
        breaker: CircuitBreaker | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        auth: tuple[str, str] | None = None,
    ) -> None:
        """`auth`: the (user, password) of a server started with OPENCODE_SERVER_PASSWORD."""
        self.base_url = base_url.rstrip("/")
        self.attempts = attempts
        self.backoff = backoff or Backoff()
        self.breaker = breaker or CircuitBreaker()
        self.sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=TIMEOUT,
            transport=transport,
            auth=httpx.BasicAuth(*auth) if auth else None,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def health(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/global/health")
        return result

    async def create_session(self, directory: str, title: str) -> dict[str, Any]:
        body = {"title": title}
        session: dict[str, Any] = await self._call(
            "POST", "/session", directory=directory, json=body, idempotent=False
        )
        return session

    async def prompt(
        self, session_id: str, directory: str, text: str, model: str | None = None
    ) -> None:
        """Starts the prompt (`prompt_async`); its progress is on the event stream."""
        body: dict[str, Any] = {"parts": [{"type": "text", "text": text}]}
        if model:
            provider, _, model_id = model.partition("/")
            body["model"] = {"providerID": provider, "modelID": model_id}
        await self._call(
            "POST",
            f"/session/{session_id}/prompt_async",
            directory=directory,
            json=body,
            idempotent=False,
        )

    async def abort(self, session_id: str, directory: str) -> None:
        await self._call("POST", f"/session/{session_id}/abort", directory=directory)

    async def messages(self, session_id: str, directory: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self._call(
            "GET", f"/session/{session_id}/message", directory=directory
        )
        return found

    async def busy_sessions(self, directory: str) -> dict[str, Any]:
        """`GET /session/status`: the sessions that are busy (idle ones are absent)."""
        found: dict[str, Any] = await self._call("GET", "/session/status", directory=directory)
        return found

    async def reply_permission(self, request_id: str, directory: str, reply: str) -> None:
        await self._call(
            "POST", f"/permission/{request_id}/reply", directory=directory, json={"reply": reply}
        )

    @contextlib.asynccontextmanager
    async def events(self, directory: str) -> AsyncIterator[EventStream]:
        """The event stream of `directory`'s instance, open (and re-opened) while in the block."""
        stream = EventStream(self, directory)
        await stream.open()
        try:
            yield stream
        finally:
            await stream.close()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        directory: str | None = None,
        json: Any = None,
        idempotent: bool = True,
    ) -> Any:
        params = {"directory": directory} if directory else None
        last = ""
        for attempt in range(self.attempts):
            if attempt:
                await self.sleep(self.backoff.delay(attempt - 1))
            try:
                self.breaker.before_call()
            except CircuitOpenError as exc:
                raise OpenCodeUnavailable(str(exc)) from exc
            try:
                response = await self._http.request(method, path, params=params, json=json)
            except httpx.TransportError as exc:
                self.breaker.failed()
                last = f"{type(exc).__name__}: {exc}"
                if idempotent or _never_sent(exc):
                    continue
                raise OpenCodeUnavailable(f"{method} {path} failed: {last}") from exc
            if response.status_code >= 500:
                self.breaker.failed()
                last = f"{response.status_code} {response.text[:200]}"
                if idempotent or response.status_code in NOT_ACTED_ON:
                    continue
                raise OpenCodeRefused(response.status_code, response.text)
            self.breaker.succeeded()
            if response.status_code >= 400:
                raise OpenCodeRefused(response.status_code, response.text)
            return _body(response)
        raise OpenCodeUnavailable(f"{method} {path} failed {self.attempts} times; last: {last}")

    async def open_stream(self, directory: str) -> tuple[httpx.Response, AsyncIterator[str]]:
        """One connection to `GET /event`; the caller closes the response."""
        self.breaker.before_call()
        request = self._http.build_request(
            "GET", "/event", params={"directory": directory}, timeout=STREAM_TIMEOUT
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError:
            self.breaker.failed()
            raise
        if response.status_code != 200:
            await response.aclose()
            self.breaker.failed()
            raise OpenCodeUnavailable(f"GET /event answered {response.status_code}")
        self.breaker.succeeded()
        return response, response.aiter_lines()


class EventStream:
    """Reads `GET /event` in the background into a queue; re-opens it when it drops."""

    def __init__(self, client: OpenCodeClient, directory: str) -> None:
        self._client = client
        self._directory = directory
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._connected = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._failures = 0

    async def open(self, within: float = 15.0) -> None:
        """Starts reading and waits for `server.connected`, so no later event is missed."""
        self._reader = asyncio.create_task(self._read())
        waiter = asyncio.create_task(self._connected.wait())
        await asyncio.wait(
            {waiter, self._reader}, timeout=within, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()
        if self._connected.is_set():
            return
        await self.close()
        raise OpenCodeUnavailable(f"the event stream did not open within {within:.0f}s")

    async def next(self, within: float) -> dict[str, Any] | None:
        """The next event, or None when none came within `within` seconds."""
        try:
            async with asyncio.timeout(within):
                return await self._queue.get()
        except TimeoutError:
            return None

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self) -> None:
        while True:
            try:
                response, lines = await self._client.open_stream(self._directory)
            except (httpx.TransportError, OpenCodeError, CircuitOpenError) as exc:
                log.warning("OpenCode event stream unavailable: %s", exc)
            else:
                if self._connected.is_set():
                    self._queue.put_nowait({"type": RECONNECTED, "properties": {}})
                try:
                    await self._pump(lines)
                except httpx.TransportError as exc:
                    log.info("OpenCode event stream dropped (%s); re-opening", exc)
                finally:
                    await response.aclose()
            await self._client.sleep(self._client.backoff.delay(min(self._failures, 5)))
            self._failures += 1

    async def _pump(self, lines: AsyncIterator[str]) -> None:
        decoder = SseDecoder()
        async for line in lines:
            event = decoder.feed(line)
            if event is None:
                continue
            if event.get("type") == "server.connected":
                self._connected.set()
                self._failures = 0
            self._queue.put_nowait(event)


def _never_sent(exc: httpx.TransportError) -> bool:
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text
