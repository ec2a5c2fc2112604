"""Two gateway replicas checking API keys, in front of the real services, PostgreSQL and Redis:
scopes over HTTP, a key made on one replica working on the other, a revocation reaching both
(and closing open sockets) within the key cache's lifetime, one rate limit shared by both, sockets
authenticated by subprotocol or header, and no secret in any log line meanwhile."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from orchestrator.common.settings import Settings
from orchestrator.common.stack import pick_free_port
from orchestrator.gateway.security.keys import mint
from orchestrator.gateway.security.logs import RedactSecrets
from orchestrator.gateway.security.store import open_key_store
from tests.support.mesh import running_gateway

pytestmark = pytest.mark.timeout(90)

CACHE_SECONDS = 1.0
BODY = {"title": "IND-SEC guarded session", "initial_prompt": "check the guard"}


@pytest.fixture(scope="module")
async def replicas(
    settings: Settings,
    session_service: str,
    agent_service: str,
    task_service: str,
    context_service: str,
) -> AsyncIterator[list[str]]:
    """Base URLs of two gateways with keys on (1 s key cache), sharing PostgreSQL and Redis."""
    async with AsyncExitStack() as stack:
        bases = []
        for _ in range(2):
            secured = settings.model_copy(
                update={
                    "gateway_auth": "keys",
                    "gateway_port": pick_free_port(),
                    "gateway_key_cache_seconds": CACHE_SECONDS,
                }
            )
            bases.append(await stack.enter_async_context(running_gateway(secured)))
        yield bases


@pytest.fixture(scope="module")
async def admin_key(settings: Settings) -> str:
    """An admin key made as `orch keys create` makes one: straight into the store."""
    minted = mint()
    async with open_key_store(str(settings.database_url)) as store:
        await store.create(minted, name="e2e admin", scopes=["admin"], burst=1000)
    return minted.plaintext


def _auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def _make_key(base: str, admin: str, **body: object) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        reply = await http.post("/api/v1/keys", json=body, headers=_auth(admin))
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def _ws(base: str) -> str:
    return base.replace("http://", "ws://")


async def test_scopes_and_keys_across_replicas(replicas: list[str], admin_key: str) -> None:
    a, b = replicas
    reader = await _make_key(a, admin_key, name="reader", scopes=["read"])
    writer = await _make_key(a, admin_key, name="writer", scopes=["write"])
    async with httpx.AsyncClient(base_url=b, timeout=10) as http:
        missing = await http.get("/api/v1/sessions")
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthenticated"
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert (await http.get("/ready")).status_code == 200  # probes stay open
        listed = await http.get("/api/v1/sessions", headers=_auth(str(reader["key"])))
        assert listed.status_code == 200 and "ratelimit-remaining" in listed.headers
        refused = await http.post("/api/v1/sessions", json=BODY, headers=_auth(str(reader["key"])))
        assert refused.status_code == 403, refused.text
        created = await http.post("/api/v1/sessions", json=BODY, headers=_auth(str(writer["key"])))
        assert created.status_code == 201, created.text
        keys = await http.get("/api/v1/keys", headers=_auth(str(writer["key"])))
        assert keys.status_code == 403


async def test_a_revocation_reaches_every_replica_and_closes_open_sockets(
    replicas: list[str], admin_key: str
) -> None:
    a, b = replicas
    made = await _make_key(a, admin_key, name="to revoke", scopes=["read"])
    key = str(made["key"])
    protocols = [Subprotocol("orch.events"), Subprotocol(f"orch.key.{key}")]
    async with (
        httpx.AsyncClient(timeout=10) as http,
        websockets.connect(_ws(b) + "/ws/sessions", subprotocols=protocols) as socket,
    ):
        assert socket.subprotocol == "orch.events"
        assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "hello"
        for base in replicas:
            assert (
                await http.get(base + "/api/v1/sessions", headers=_auth(key))
            ).status_code == 200
        revoked = await http.delete(f"{a}/api/v1/keys/{made['id']}", headers=_auth(admin_key))
        assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
        # Replica A forgot it at once; B trusted its lookup for at most CACHE_SECONDS.
        assert (await http.get(a + "/api/v1/sessions", headers=_auth(key))).status_code == 401
        started = time.monotonic()
        while (await http.get(b + "/api/v1/sessions", headers=_auth(key))).status_code != 401:
            assert time.monotonic() - started < CACHE_SECONDS + 0.5, "B still takes the key"
            await asyncio.sleep(0.05)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(socket.recv(), CACHE_SECONDS + 3)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert closed.value.rcvd.reason == "the API key was revoked"


async def test_sockets_need_a_key_in_a_header_or_a_subprotocol(
    replicas: list[str], admin_key: str
) -> None:
    made = await _make_key(replicas[0], admin_key, name="socket", scopes=["read"])
    url = _ws(replicas[1]) + "/ws/agents"
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url):
            pass
    # Refused before the accept: the server answers the handshake with 403.
    assert refused.value.response.status_code == 403
    async with websockets.connect(url, additional_headers=_auth(str(made["key"]))) as socket:
        assert socket.subprotocol is None
        assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "hello"


async def test_one_rate_limit_over_both_replicas(replicas: list[str], admin_key: str) -> None:
    made = await _make_key(
        replicas[0], admin_key, name="limited", scopes=["read"], rate_limit=0.5, burst=4
    )
    async with httpx.AsyncClient(timeout=10) as http:
        replies = [
            await http.get(replicas[i % 2] + "/api/v1/agents", headers=_auth(str(made["key"])))
            for i in range(5)
        ]
    assert [r.status_code for r in replies] == [200, 200, 200, 200, 429]
    assert [r.headers["ratelimit-remaining"] for r in replies] == ["3", "2", "1", "0", "0"]
    limited = replies[-1]
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 2


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
async def test_no_secret_reaches_a_log_line(
    replicas: list[str], admin_key: str, caplog: pytest.LogCaptureFixture, level: int
) -> None:
    """At INFO the gateway's own lines carry no key. At DEBUG, libraries dump handshake
    headers; the filter the gateway's entry point installs blanks them out."""
    if level == logging.DEBUG:
        caplog.handler.addFilter(RedactSecrets())
    caplog.set_level(level)
    made = await _make_key(replicas[0], admin_key, name="quiet", scopes=["write"])
    key = str(made["key"])
    revoked_key = str(
        (await _make_key(replicas[0], admin_key, name="gone", scopes=["read"]))["key"]
    )
    async with httpx.AsyncClient(timeout=10) as http:
        await http.delete(
            f"{replicas[0]}/api/v1/keys/{revoked_key.split('_')[1]}", headers=_auth(admin_key)
        )
        for base in replicas:
            await http.get(base + "/api/v1/sessions", headers=_auth(key))
            await http.post(base + "/api/v1/sessions", json=BODY, headers={"x-api-key": key})
            await http.get(base + "/api/v1/keys", headers=_auth(key))  # 403
            await http.get(base + "/api/v1/sessions", headers=_auth(revoked_key))  # 401
            await http.get(base + "/api/v1/sessions", headers=_auth(key[:-1] + "x"))  # malformed
            await http.get(base + "/api/v1/sessions/not-a-uuid", headers=_auth(key))  # 422
        protocols = [Subprotocol("orch.events"), Subprotocol(f"orch.key.{key}")]
        async with websockets.connect(
            _ws(replicas[1]) + "/ws/sessions", subprotocols=protocols
        ) as s:
            await asyncio.wait_for(s.recv(), 10)
        with pytest.raises(InvalidStatus):
            async with websockets.connect(
                _ws(replicas[1]) + "/ws/sessions", additional_headers=_auth(revoked_key)
            ):
                pass
    assert caplog.records, "nothing was logged: the capture is not working"
    # Refusals are routine: no error line for them (nor for the refused socket).
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    for secret in (key, revoked_key, admin_key):
        assert secret.rsplit("_", 1)[1] not in caplog.text
    if level == logging.DEBUG:
        assert "[redacted]" in caplog.text  # the handshake dumps were there, blanked
