"""The key guard on the app, with an in-memory key store and rate limiter: 401/403/429/503 in the
error envelope, open paths, the admin routes, WebSocket handshakes and revocation of open
sockets, the OpenAPI declaration, CORS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI

from orchestrator.common.settings import Settings
from orchestrator.gateway.app import create_app
from orchestrator.gateway.clients import ServiceClients
from orchestrator.gateway.resources import Resources
from orchestrator.gateway.security.cache import KeyCache
from orchestrator.gateway.security.keys import mint
from orchestrator.gateway.security.middleware import credential_of, without_credentials
from tests.unit.gateway.conftest import MAX_BODY, FakeFeed, WebSocketDriver
from tests.unit.gateway.fake_keys import FakeKeyStore, FakeRateLimiter

if TYPE_CHECKING:
    from tests.unit.gateway.conftest import FakeSessionStub

pytestmark = pytest.mark.timeout(30)

BODY = {"title": "IND-1 guarded", "initial_prompt": "do it"}
SECURED = Settings(gateway_max_body_bytes=MAX_BODY, gateway_rate_limit=10, gateway_rate_burst=3)


@pytest.fixture
def store() -> FakeKeyStore:
    return FakeKeyStore()


@pytest.fixture
def limiter() -> FakeRateLimiter:
    return FakeRateLimiter()


@pytest.fixture
def secured(
    shared_app: FastAPI,
    clients: ServiceClients,
    feed: FakeFeed,
    store: FakeKeyStore,
    limiter: FakeRateLimiter,
) -> FastAPI:
    shared_app.state.resources = Resources(
        SECURED,
        clients=clients,
        events=feed,
        api_keys=store,
        authenticator=KeyCache(store, ttl=0.0),
        rate_limiter=limiter,
    )
    return shared_app


@pytest.fixture
async def http(secured: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=secured)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _assert_error(reply: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    error: dict[str, Any] = reply.json()["error"]
    assert error["code"] == code and error["message"]
    return error


async def test_no_key_is_401_with_a_challenge(http: httpx.AsyncClient) -> None:
    reply = await http.get("/api/v1/sessions")
    error = _assert_error(reply, 401, "unauthenticated")
    assert "Authorization: Bearer" in error["message"]
    assert reply.headers["www-authenticate"] == 'Bearer realm="orchestrator"'


@pytest.mark.parametrize("how", ["malformed", "unknown", "revoked", "expired", "basic"])
async def test_keys_not_in_force_are_401(
    http: httpx.AsyncClient, store: FakeKeyStore, how: str
) -> None:
    from datetime import UTC, datetime, timedelta

    key = await store.add("ci", "admin")
    headers = _bearer(key)
    if how == "malformed":
        headers = _bearer("hunter2")
    elif how == "unknown":
        headers = _bearer(mint().plaintext)
    elif how == "revoked":
        await store.revoke(key.split("_")[1])
    elif how == "expired":
        key = await store.add("old", "admin", expires_at=datetime.now(UTC) - timedelta(seconds=1))
        headers = _bearer(key)
    elif how == "basic":
        headers = {"authorization": "Basic dXNlcjpwYXNz"}
    reply = await http.get("/api/v1/sessions", headers=headers)
    error = _assert_error(reply, 401, "unauthenticated")
    if how in ("revoked", "expired"):
        assert how in error["message"]
    assert reply.headers["www-authenticate"].startswith('Bearer realm="orchestrator"')


async def test_scopes_read_write_admin(
    http: httpx.AsyncClient, store: FakeKeyStore, session_stub: FakeSessionStub
) -> None:
    read_key = await store.add("r", "read")
    write_key = await store.add("w", "write")
    admin_key = await store.add("a", "admin")
    assert (await http.get("/api/v1/sessions", headers=_bearer(read_key))).status_code == 200
    refused = await http.post("/api/v1/sessions", json=BODY, headers=_bearer(read_key))
    error = _assert_error(refused, 403, "permission_denied")
    assert "needs write" in error["message"] and read_key not in error["message"]
    assert session_stub.requests == [session_stub.requests[0]]  # the POST never reached it
    created = await http.post("/api/v1/sessions", json=BODY, headers=_bearer(write_key))
    assert created.status_code == 201
    _assert_error(
        await http.get("/api/v1/keys", headers=_bearer(write_key)), 403, "permission_denied"
    )
    assert (await http.get("/api/v1/keys", headers=_bearer(admin_key))).status_code == 200
    assert (
        await http.post("/api/v1/sessions", json=BODY, headers=_bearer(admin_key))
    ).status_code == 201


async def test_the_x_api_key_header_works_too(http: httpx.AsyncClient, store: FakeKeyStore) -> None:
    key = await store.add("ci", "read")
    assert (await http.get("/api/v1/sessions", headers={"x-api-key": key})).status_code == 200


@pytest.mark.parametrize("path", ["/health", "/live", "/openapi.json", "/docs", "/"])
async def test_probes_docs_and_the_dashboard_stay_open(http: httpx.AsyncClient, path: str) -> None:
    assert (await http.get(path)).status_code == 200


async def test_rate_limit_headers_then_429_with_retry_after(
    http: httpx.AsyncClient, store: FakeKeyStore
) -> None:
    key = await store.add("ci", "read")
    remaining = []
    for _ in range(3):
        reply = await http.get("/api/v1/sessions", headers=_bearer(key))
        assert reply.status_code == 200
        assert reply.headers["ratelimit-limit"] == "3"
        remaining.append(reply.headers["ratelimit-remaining"])
    assert remaining == ["2", "1", "0"]
    reply = await http.get("/api/v1/sessions", headers=_bearer(key))
    _assert_error(reply, 429, "rate_limited")
    assert reply.headers["retry-after"] == "1" and reply.headers["ratelimit-remaining"] == "0"
    # Another key has its own bucket.
    other = await store.add("other", "read")
    assert (await http.get("/api/v1/sessions", headers=_bearer(other))).status_code == 200


async def test_a_keys_own_limits_override_the_defaults(
    http: httpx.AsyncClient, store: FakeKeyStore
) -> None:
    key = await store.add("bulk", "read", rate_limit=100.0, burst=5)
    statuses = [
        (await http.get("/api/v1/sessions", headers=_bearer(key))).status_code for _ in range(6)
    ]
    assert statuses == [200] * 5 + [429]
    unlimited = await store.add("unlimited", "read", rate_limit=0.0)
    for _ in range(10):
        reply = await http.get("/api/v1/sessions", headers=_bearer(unlimited))
        assert reply.status_code == 200 and "ratelimit-limit" not in reply.headers


async def test_without_a_limiter_requests_pass_unlimited(
    http: httpx.AsyncClient, store: FakeKeyStore, limiter: FakeRateLimiter
) -> None:
    limiter.unavailable = True  # what RedisRateLimiter answers while Redis is down
    key = await store.add("ci", "read")
    for _ in range(5):
        assert (await http.get("/api/v1/sessions", headers=_bearer(key))).status_code == 200


async def test_503_when_keys_cannot_be_checked(
    http: httpx.AsyncClient, store: FakeKeyStore, secured: FastAPI
) -> None:
    key = await store.add("ci", "read")
    store.fail_with = OSError("connection refused")
    reply = await http.get("/api/v1/sessions", headers=_bearer(key))
    _assert_error(reply, 503, "unavailable")
    assert reply.headers["retry-after"] == "1"
    secured.state.resources.authenticator = None  # no PostgreSQL configured at all
    _assert_error(await http.get("/api/v1/sessions", headers=_bearer(key)), 503, "unavailable")


async def test_auth_off_lets_everything_through(
    shared_app: FastAPI, clients: ServiceClients, feed: FakeFeed
) -> None:
    off = Settings(gateway_max_body_bytes=MAX_BODY, gateway_auth="off")
    shared_app.state.resources = Resources(off, clients=clients, events=feed)
    transport = httpx.ASGITransport(app=shared_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/api/v1/sessions")).status_code == 200


async def test_admin_routes_create_list_get_and_revoke(
    http: httpx.AsyncClient, store: FakeKeyStore
) -> None:
    admin = _bearer(await store.add("root", "admin", burst=100))
    body = {"name": "deploy bot", "scopes": ["write"], "expires_in_seconds": 3600, "burst": 9}
    created = await http.post("/api/v1/keys", json=body, headers=admin)
    assert created.status_code == 201, created.text
    made = created.json()
    assert made["key"].startswith(f"orch_{made['id']}_") and made["status"] == "active"
    assert made["scopes"] == ["write"] and made["burst"] == 9 and made["expires_at"]
    listed = (await http.get("/api/v1/keys", headers=admin)).json()["keys"]
    assert [k["name"] for k in listed] == ["root", "deploy bot"]
    assert all("key" not in k and "secret_sha256" not in k for k in listed)
    assert made["key"] not in (await http.get("/api/v1/keys", headers=admin)).text
    new_key = _bearer(made["key"])
    assert (await http.post("/api/v1/sessions", json=BODY, headers=new_key)).status_code == 201
    revoked = await http.delete(f"/api/v1/keys/{made['id']}", headers=admin)
    assert revoked.json()["status"] == "revoked" and revoked.json()["revoked_at"]
    _assert_error(await http.get("/api/v1/sessions", headers=new_key), 401, "unauthenticated")
    again = await http.delete(f"/api/v1/keys/{made['id']}", headers=admin)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    _assert_error(await http.get("/api/v1/keys/0123456789abcdef", headers=admin), 404, "not_found")
    bad = await http.post("/api/v1/keys", json={"name": "x", "scopes": ["root"]}, headers=admin)
    assert _assert_error(bad, 422, "invalid_argument")["field"] == "scopes.0"


def test_routes_never_see_the_credentials() -> None:
    key = mint().plaintext
    scope = {
        "type": "websocket",
        "headers": [
            (b"host", b"x"),
            (b"authorization", f"Bearer {key}".encode()),
            (b"x-api-key", key.encode()),
            (b"sec-websocket-protocol", f"orch.events, orch.key.{key}".encode()),
        ],
        "subprotocols": ["orch.events", f"orch.key.{key}"],
    }
    assert credential_of(scope) == key
    stripped = without_credentials(scope)
    assert key not in repr(stripped)
    assert stripped["subprotocols"] == ["orch.events"]
    assert (b"sec-websocket-protocol", b"orch.events") in stripped["headers"]


# ---- WebSockets ------------------------------------------------------------------------------


async def test_a_socket_without_a_key_is_refused_before_it_is_accepted(secured: FastAPI) -> None:
    driver = WebSocketDriver(secured, "/ws/sessions")
    answer = await driver.connect()
    assert answer["type"] == "websocket.close" and answer["code"] == 1008
    assert answer["reason"].startswith("401 ")
    await driver.finished()


@pytest.mark.parametrize("why", ["revoked", "rate limited"])
async def test_every_socket_refusal_is_a_close_before_the_accept(
    secured: FastAPI, store: FakeKeyStore, limiter: FakeRateLimiter, why: str
) -> None:
    key = await store.add("socket", "read")
    if why == "revoked":
        await store.revoke(key.split("_")[1])
    else:
        limiter.taken[key.split("_")[1]] = SECURED.gateway_rate_burst
    # Even on a server offering denial responses: uvicorn's would log an error for each.
    driver = WebSocketDriver(
        secured,
        "/ws/sessions",
        headers=[(b"x-api-key", key.encode())],
        extensions={"websocket.http.response": {}},
    )
    answer = await driver.connect()
    assert answer["type"] == "websocket.close" and answer["code"] == 1008
    assert answer["reason"].startswith("401 " if why == "revoked" else "429 ")
    await driver.finished()


async def test_a_browser_socket_sends_its_key_as_a_subprotocol(
    secured: FastAPI, store: FakeKeyStore
) -> None:
    key = await store.add("dashboard", "read")
    driver = WebSocketDriver(
        secured, "/ws/sessions", subprotocols=["orch.events", f"orch.key.{key}"]
    )
    accepted = await driver.connect()
    assert accepted["type"] == "websocket.accept"
    assert accepted["subprotocol"] == "orch.events"  # never the key
    assert (await driver.receive_json())["type"] == "hello"
    await driver.disconnect()


async def test_a_socket_with_a_header_key_is_accepted_without_a_subprotocol(
    secured: FastAPI, store: FakeKeyStore
) -> None:
    key = await store.add("script", "read")
    driver = WebSocketDriver(
        secured, "/ws/agents", headers=[(b"authorization", f"Bearer {key}".encode())]
    )
    accepted = await driver.connect()
    assert accepted["type"] == "websocket.accept" and accepted.get("subprotocol") is None
    await driver.disconnect()


async def test_an_open_socket_is_closed_when_its_key_is_revoked(
    secured: FastAPI, store: FakeKeyStore, feed: FakeFeed
) -> None:
    key = await store.add("dashboard", "read")
    driver = WebSocketDriver(
        secured, "/ws/sessions", subprotocols=["orch.events", f"orch.key.{key}"]
    )
    assert (await driver.connect())["type"] == "websocket.accept"
    assert (await driver.receive_json())["type"] == "hello"
    await store.revoke(key.split("_")[1])
    closed = await driver.next_message()  # the guard re-checks every max(ttl, 1 s)
    assert closed == {"type": "websocket.close", "code": 1008, "reason": "the API key was revoked"}
    await driver.finished()
    assert feed.released.is_set()  # the route's consumer was let go


# ---- OpenAPI and CORS ------------------------------------------------------------------------


async def test_openapi_declares_the_key_on_guarded_operations(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/openapi.json")).json()
    assert set(schema["components"]["securitySchemes"]) == {"bearer", "apiKeyHeader"}
    create = schema["paths"]["/api/v1/sessions"]["post"]
    assert create["security"] == [{"bearer": []}, {"apiKeyHeader": []}]
    assert "scope `write`" in create["description"]
    assert "scope `admin`" in schema["paths"]["/api/v1/keys"]["get"]["description"]
    assert "security" not in schema["paths"]["/health"]["get"]


async def test_cors_is_off_by_default(http: httpx.AsyncClient) -> None:
    reply = await http.get("/health", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in reply.headers


async def test_cors_allows_the_configured_origins_only(
    clients: ServiceClients, feed: FakeFeed, store: FakeKeyStore
) -> None:
    settings = Settings(gateway_cors_origins="https://ops.example")
    app = create_app(settings)
    app.state.resources = Resources(
        settings, clients=clients, events=feed, authenticator=KeyCache(store, ttl=0.0)
    )
    preflight = {
        "origin": "https://ops.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        allowed = await client.options("/api/v1/sessions", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://ops.example"
        refused = await client.options(
            "/api/v1/sessions", headers={**preflight, "origin": "https://evil.example"}
        )
        assert refused.status_code == 400
        # A refusal still carries the header, so the page can read why.
        unauthenticated = await client.get(
            "/api/v1/sessions", headers={"origin": "https://ops.example"}
        )
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["access-control-allow-origin"] == "https://ops.example"
        exposed = unauthenticated.headers["access-control-expose-headers"]
        assert "retry-after" in exposed and "ratelimit-remaining" in exposed
        assert "ratelimit-limit" in unauthenticated.headers.get(
            "access-control-expose-headers", "ratelimit-limit"
        )


async def test_a_gateway_without_keys_has_no_key_management(
    clients: ServiceClients, feed: FakeFeed
) -> None:
    off = Settings(gateway_auth="off")
    app = create_app(off)
    app.state.resources = Resources(off, clients=clients, events=feed)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        _assert_error(await client.get("/api/v1/keys"), 404, "not_found")
        schema = (await client.get("/openapi.json")).json()
    assert "/api/v1/keys" not in schema["paths"] and "securitySchemes" not in schema["components"]
