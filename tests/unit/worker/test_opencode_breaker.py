"""Backoff, the circuit breaker, and the HTTP client's retries (over httpx's in-memory
transport: no server, no sockets)."""

from __future__ import annotations

import json

import httpx
import pytest

from orchestrator.worker.executors.opencode.breaker import Backoff, CircuitBreaker, CircuitOpenError
from orchestrator.worker.executors.opencode.client import (
    OpenCodeClient,
    OpenCodeRefused,
    OpenCodeUnavailable,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_up_to_the_cap_with_jitter_below() -> None:
    backoff = Backoff(base_seconds=0.5, cap_seconds=3.0, jitter=0.5)
    assert [backoff.delay(n, rng=lambda: 0.0) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff.delay(1, rng=lambda: 1.0) == 0.5


def test_the_breaker_opens_after_failures_in_a_row_and_probes_once() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, reset_seconds=10, clock=clock)
    for _ in range(2):
        breaker.before_call()
        breaker.failed()
    breaker.before_call()
    breaker.succeeded()  # a success resets the count
    for _ in range(3):
        breaker.before_call()
        breaker.failed()
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    clock.now += 10
    assert breaker.state == "half_open"
    breaker.before_call()  # the one trial call
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    breaker.failed()  # the trial failed: open again for a full period
    assert breaker.state == "open"
    clock.now += 10
    breaker.before_call()
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.failures == 0


def _client(handler: httpx.MockTransport, breaker: CircuitBreaker | None = None) -> OpenCodeClient:
    async def no_sleep(seconds: float) -> None:
        return None

    return OpenCodeClient(
        "http://opencode.test", transport=handler, breaker=breaker, sleep=no_sleep
    )


async def test_transient_failures_are_retried_until_success() -> None:
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.ConnectError("refused")
        if len(calls) == 2:
            return httpx.Response(503, text="starting")
        return httpx.Response(200, json={"healthy": True})

    client = _client(httpx.MockTransport(answer))
    assert await client.health() == {"healthy": True}
    assert len(calls) == 3 and client.breaker.failures == 0
    await client.aclose()


async def test_a_prompt_is_not_repeated_when_the_server_may_have_taken_it() -> None:
    calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500, text="boom")

    client = _client(httpx.MockTransport(answer))
    with pytest.raises(OpenCodeRefused):
        await client.prompt("ses_1", "/w", "hi", model="p/m")
    assert len(calls) == 1
    body = json.loads(calls[0].content)
    assert body == {
        "parts": [{"type": "text", "text": "hi"}],
        "model": {"providerID": "p", "modelID": "m"},
    }
    assert calls[0].url.params["directory"] == "/w"
    await client.aclose()


async def test_client_errors_are_final_and_do_not_count_against_the_server() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="no such session")

    client = _client(httpx.MockTransport(answer))
    with pytest.raises(OpenCodeRefused) as refused:
        await client.abort("ses_gone", "/w")
    assert refused.value.status == 404 and client.breaker.failures == 0
    await client.aclose()


async def test_an_open_breaker_refuses_calls_without_sending_them() -> None:
    calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("refused")

    breaker = CircuitBreaker(threshold=3, reset_seconds=60)
    client = _client(httpx.MockTransport(answer), breaker)
    with pytest.raises(OpenCodeUnavailable):
        await client.messages("ses_1", "/w")
    assert len(calls) == 3 and breaker.state == "open"
    with pytest.raises(OpenCodeUnavailable, match="failed 3 times in a row"):
        await client.messages("ses_1", "/w")
    assert len(calls) == 3
    await client.aclose()
