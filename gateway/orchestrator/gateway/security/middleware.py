"""The guard in front of every route: API key → scope → rate limit, for HTTP and WebSockets.

A key comes as `Authorization: Bearer <key>` or `X-API-Key: <key>`. A browser cannot set headers
on a WebSocket, so a socket may instead offer two subprotocols, `orch.events` and
`orch.key.<key>`; the gateway selects `orch.events` and never echoes the key. Keys are never
taken from the query string (URLs end up in access logs).

Refusals use the API's error envelope: 401 (no key, or one not in force) with
`WWW-Authenticate`, 403 (the key lacks the scope), 429 (rate limited) with `Retry-After`, 503
(keys cannot be checked). A refused socket is closed with 1008 (policy violation) before it is
accepted, which the server answers with a 403 instead of the handshake. An open socket whose key
is revoked or expires is closed with 1008 within the key cache's lifetime.

The credentials are removed from what the routes see, so no handler can log them by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.gateway.errors import error_body
from orchestrator.gateway.resources import Resources
from orchestrator.gateway.security.cache import (
    KeyCache,
    KeysUnavailable,
    Principal,
    Unauthenticated,
)
from orchestrator.gateway.security.keys import Refusal
from orchestrator.gateway.security.policy import required_scope
from orchestrator.gateway.security.rate_limit import Quota

log = logging.getLogger(__name__)

WS_PROTOCOL = "orch.events"
WS_KEY_PREFIX = "orch.key."
PRINCIPAL = "orch.principal"  # the scope entry naming who a request comes from
_CREDENTIAL_HEADERS = (b"authorization", b"x-api-key")
_REALM = 'Bearer realm="orchestrator"'
_WS_POLICY_VIOLATION = 1008


class Denied(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = list(headers)


class ApiKeyGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        resources = cast(Resources, scope["app"].state.resources)
        needed = required_scope(scope["type"], scope.get("method", "GET"), scope["path"])
        if needed is None or resources.settings.gateway_auth == "off":
            await self.app(scope, receive, send)
            return
        presented = credential_of(scope)
        scope = without_credentials(scope)
        try:
            principal, quota = await _admit(resources, presented, needed, scope)
        except Denied as denied:
            await _deny(scope, receive, send, denied)
            return
        scope[PRINCIPAL] = principal
        if scope["type"] == "http":
            await self.app(scope, receive, _adding_headers(send, quota))
        else:
            keys = resources.authenticator
            assert keys is not None
            await _watched_socket(self.app, scope, receive, send, keys, presented)


async def _admit(
    resources: Resources, presented: str, needed: str, scope: Scope
) -> tuple[Principal, Quota | None]:
    keys = resources.authenticator
    if keys is None:
        raise Denied(503, "unavailable", "API keys need PostgreSQL (ORCH_DATABASE_URL)")
    try:
        principal = await keys.authenticate(presented)
    except Unauthenticated as exc:
        raise _unauthenticated(exc.refusal) from None
    except KeysUnavailable as exc:
        log.warning("%s", exc)
        message = "API keys cannot be checked right now; retry soon"
        raise Denied(503, "unavailable", message, [(b"retry-after", b"1")]) from None
    if needed not in principal.scopes:
        what = "a socket" if scope["type"] == "websocket" else scope["method"]
        scopes = ", ".join(sorted(principal.scopes))
        raise Denied(
            403,
            "permission_denied",
            f"key {principal.key_id} ({principal.name}) has scope {scopes}; "
            f"{what} on {scope['path']} needs {needed}",
        )
    quota = await _take(resources, principal)
    if quota is not None and not quota.allowed:
        raise Denied(
            429,
            "rate_limited",
            f"key {principal.key_id} is over its rate limit; retry in "
            f"{quota.retry_after_seconds} s",
            quota.headers(),
        )
    return principal, quota


def _unauthenticated(refusal: Refusal) -> Denied:
    challenge = _REALM
    if refusal is not Refusal.MISSING:
        challenge += ', error="invalid_token"'
        log.info("refused an API key: %s", refusal.name.lower())
    headers = [(b"www-authenticate", challenge.encode())]
    return Denied(401, "unauthenticated", refusal.value, headers)


async def _take(resources: Resources, principal: Principal) -> Quota | None:
    settings = resources.settings
    rate = principal.rate_limit if principal.rate_limit is not None else settings.gateway_rate_limit
    burst = principal.burst if principal.burst is not None else settings.gateway_rate_burst
    if resources.rate_limiter is None or rate <= 0:
        return None
    return await resources.rate_limiter.take(principal.key_id, rate, burst)


def credential_of(scope: Scope) -> str:
    """The key a request presents ("" for none): a header, or a socket's subprotocol."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if kind.lower() == "bearer" else ""
        if name == b"x-api-key":
            return str(value.decode("latin-1").strip())
    for protocol in scope.get("subprotocols", ()):
        if protocol.startswith(WS_KEY_PREFIX):
            return str(protocol.removeprefix(WS_KEY_PREFIX))
    return ""


def without_credentials(scope: Scope) -> Scope:
    """A copy of `scope` without the key in its headers or subprotocols."""
    headers = []
    for name, value in scope["headers"]:
        if name in _CREDENTIAL_HEADERS:
            continue
        if name == b"sec-websocket-protocol":
            kept = [p.strip() for p in value.decode("latin-1").split(",")]
            value = ", ".join(p for p in kept if not p.startswith(WS_KEY_PREFIX)).encode()
        headers.append((name, value))
    stripped = {**scope, "headers": headers}
    if "subprotocols" in scope:
        stripped["subprotocols"] = [
            p for p in scope["subprotocols"] if not p.startswith(WS_KEY_PREFIX)
        ]
    return stripped


def _adding_headers(send: Send, quota: Quota | None) -> Send:
    if quota is None:
        return send

    async def add(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *quota.headers()]}
        await send(message)

    return add


async def _deny(scope: Scope, receive: Receive, send: Send, denied: Denied) -> None:
    body = json.dumps(error_body(denied.code, denied.message)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *denied.headers,
    ]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": denied.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    # A close before the accept: the server refuses the handshake (uvicorn answers 403). An
    # HTTP denial response (ASGI's websocket.http.response) would carry the real status, but
    # uvicorn's sans-I/O server then logs an error for every refused socket.
    await receive()  # websocket.connect
    await send(_close(f"{denied.status} {denied.message}"))


def _close(reason: str) -> Message:
    # A close reason is at most 123 bytes.
    short = reason.encode()[:123].decode(errors="ignore")
    return {"type": "websocket.close", "code": _WS_POLICY_VIOLATION, "reason": short}


async def _watched_socket(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, keys: KeyCache, presented: str
) -> None:
    """Runs the socket's route; should its key stop being in force (revoked, expired) the route
    is told the client left, and the client gets a close with 1008 saying why."""
    offered = WS_PROTOCOL in scope.get("subprotocols", ())
    refused: asyncio.Future[Refusal] = asyncio.get_running_loop().create_future()
    state = {"open": False}

    async def sending(message: Message) -> None:
        if message["type"] == "websocket.accept":
            if offered and message.get("subprotocol") is None:
                message = {**message, "subprotocol": WS_PROTOCOL}
            state["open"] = True
        elif message["type"] == "websocket.close":
            state["open"] = False
        await send(message)

    watcher = asyncio.create_task(_watch(keys, presented, refused))
    try:
        await app(scope, _until(receive, refused), sending)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    if refused.done() and state["open"]:
        with contextlib.suppress(Exception):  # the client may be gone already
            await send(_close(refused.result().value))


async def _watch(keys: KeyCache, presented: str, refused: asyncio.Future[Refusal]) -> None:
    while True:
        await asyncio.sleep(max(keys.ttl, 1.0))
        try:
            await keys.authenticate(presented)
        except Unauthenticated as exc:
            refused.set_result(exc.refusal)
            return
        except KeysUnavailable:
            continue  # an open socket outlives a database blip; new ones are refused meanwhile


def _until(receive: Receive, refused: asyncio.Future[Refusal]) -> Callable[[], Awaitable[Any]]:
    """`receive`, but a disconnect once the key is refused."""
    gone: Message = {"type": "websocket.disconnect", "code": _WS_POLICY_VIOLATION}

    async def guarded() -> Message:
        if refused.done():
            return gone
        waiting: asyncio.Future[Message] = asyncio.ensure_future(receive())
        pending: set[asyncio.Future[Any]] = {waiting, refused}
        try:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not waiting.done():
                waiting.cancel()
        return waiting.result() if waiting.done() and not waiting.cancelled() else gone

    return guarded
