"""In-process fakes for the gateway: the four service stubs, an event feed, an ASGI WebSocket
driver. The agent, task and context stubs live in `fake_*_service.py`.

The app runs in the test's event loop through httpx's ASGI transport; no server, no socket.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from uuid import uuid4

import grpc
import httpx
import pytest
from fastapi import FastAPI

from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.session.v1 import session_pb2 as pb
from orchestrator.common.settings import Settings
from orchestrator.gateway.app import create_app
from orchestrator.gateway.clients import ServiceClients
from orchestrator.gateway.event_feed import StreamEvent, subject_matches
from orchestrator.gateway.resources import Resources
from tests.unit.gateway.fake_agent_service import FakeAgentStub
from tests.unit.gateway.fake_context_service import FakeContextStub
from tests.unit.gateway.fake_task_service import FakeTaskStub
from tests.unit.gateway.fakes import rpc_error

MAX_BODY = 4096


class FakeSessionStub:
    """The SessionService calls the routes make; records requests, replays scripted failures."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.fail_with: grpc.aio.AioRpcError | None = None
        self.sessions: dict[str, pb.Session] = {}

    def _record(self, request: Any) -> None:
        self.requests.append(request)
        if self.fail_with is not None:
            raise self.fail_with

    def _session(self, session_id: str) -> pb.Session:
        if session_id not in self.sessions:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, f"session {session_id} does not exist")
        return self.sessions[session_id]

    async def CreateSession(
        self, request: pb.CreateSessionRequest, timeout: float | None = None
    ) -> pb.CreateSessionResponse:
        self._record(request)
        session = pb.Session(
            id=request.session_id or str(uuid4()),
            title=request.title,
            initial_prompt=request.initial_prompt,
            session_type=request.session_type or pb.SESSION_TYPE_EXECUTION,
            priority=request.priority,
            status=pb.SESSION_STATUS_PENDING,
            tags=request.tags,
            agent_config=request.agent_config,
            metadata=request.metadata,
            limits=request.limits,
            version=1,
        )
        session.created_at.FromJsonString("2025-03-01T12:00:00Z")
        self.sessions[session.id] = session
        return pb.CreateSessionResponse(session=session)

    async def GetSession(
        self, request: pb.GetSessionRequest, timeout: float | None = None
    ) -> pb.GetSessionResponse:
        self._record(request)
        return pb.GetSessionResponse(session=self._session(request.session_id))

    async def ListSessions(
        self, request: pb.ListSessionsRequest, timeout: float | None = None
    ) -> pb.ListSessionsResponse:
        self._record(request)
        sessions = list(self.sessions.values())
        page = common_pb2.PageResponse(next_page_token="", total_size=len(sessions))
        return pb.ListSessionsResponse(sessions=sessions, page=page)

    async def StartSession(
        self, request: pb.StartSessionRequest, timeout: float | None = None
    ) -> pb.StartSessionResponse:
        self._record(request)
        session = self._session(request.session_id)
        session.status = pb.SESSION_STATUS_RUNNING
        session.version += 1
        return pb.StartSessionResponse(session=session)

    async def PauseSession(
        self, request: pb.PauseSessionRequest, timeout: float | None = None
    ) -> pb.PauseSessionResponse:
        self._record(request)
        return pb.PauseSessionResponse(session=self._session(request.session_id))

    async def RetrySession(
        self, request: pb.RetrySessionRequest, timeout: float | None = None
    ) -> pb.RetrySessionResponse:
        self._record(request)
        return pb.RetrySessionResponse(session=self._session(request.session_id))

    async def AddCheckpoint(
        self, request: pb.AddCheckpointRequest, timeout: float | None = None
    ) -> pb.AddCheckpointResponse:
        self._record(request)
        session = self._session(request.session_id)
        checkpoint = pb.Checkpoint(
            session_id=session.id, sequence=request.sequence or 1, data=request.data
        )
        return pb.AddCheckpointResponse(session=session, checkpoint=checkpoint)

    async def DeleteSession(
        self, request: pb.DeleteSessionRequest, timeout: float | None = None
    ) -> pb.DeleteSessionResponse:
        self._record(request)
        return pb.DeleteSessionResponse(session=self._session(request.session_id))


class FakeFeed:
    """An event stream in memory: replays what matches from `start_seq`, then waits, like NATS."""

    def __init__(self, events: Sequence[StreamEvent] = (), *, fail: bool = False) -> None:
        self.events = list(events)
        self.fail = fail
        self.followed: list[tuple[list[str], int]] = []
        self.released = asyncio.Event()

    async def last_sequence(self) -> int:
        if self.fail:
            raise ConnectionError("nats: no servers available")
        return self.events[-1].seq if self.events else 0

    @asynccontextmanager
    async def follow(
        self, subjects: Sequence[str], start_seq: int
    ) -> AsyncIterator[AsyncIterator[StreamEvent]]:
        self.followed.append((list(subjects), start_seq))
        try:
            yield self._replay(subjects, start_seq)
        finally:
            self.released.set()

    async def _replay(self, subjects: Sequence[str], start_seq: int) -> AsyncIterator[StreamEvent]:
        for event in self.events:
            if event.seq >= start_seq and any(subject_matches(p, event.subject) for p in subjects):
                yield event
        await asyncio.Event().wait()


class WebSocketDriver:
    """Speaks the ASGI WebSocket protocol to the app directly (no server, no TestClient)."""

    def __init__(
        self,
        app: FastAPI,
        path: str,
        query: str = "",
        *,
        headers: Sequence[tuple[bytes, bytes]] = (),
        subprotocols: Sequence[str] = (),
        extensions: dict[str, Any] | None = None,
    ) -> None:
        self._app = app
        self._scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "ws",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": [(b"host", b"testserver"), *headers],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "subprotocols": list(subprotocols),
            "extensions": extensions or {},
        }
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def connect(self) -> dict[str, Any]:
        """Returns the app's answer to the handshake: `websocket.accept` or `websocket.close`."""
        self._task = asyncio.create_task(
            self._app(self._scope, self._inbox.get, self._outbox.put)  # type: ignore[arg-type]
        )
        await self._inbox.put({"type": "websocket.connect"})
        return await self.next_message()

    async def next_message(self) -> dict[str, Any]:
        return await asyncio.wait_for(self._outbox.get(), timeout=5)

    async def receive_json(self) -> Any:
        message = await self.next_message()
        assert message["type"] == "websocket.send", message
        return json.loads(message["text"])

    async def disconnect(self) -> None:
        await self._inbox.put({"type": "websocket.disconnect", "code": 1000})
        assert self._task is not None
        await asyncio.wait_for(self._task, timeout=5)

    async def finished(self) -> None:
        assert self._task is not None
        await asyncio.wait_for(self._task, timeout=5)


RpcErrorFactory = Callable[..., grpc.aio.AioRpcError]


@pytest.fixture
def make_rpc_error() -> RpcErrorFactory:
    return rpc_error


@pytest.fixture
def settings() -> Settings:
    # Keys are off for the API's own tests; test_auth*.py turn them on with a fake store.
    return Settings(gateway_max_body_bytes=MAX_BODY, gateway_auth="off")


@pytest.fixture
def session_stub() -> FakeSessionStub:
    return FakeSessionStub()


@pytest.fixture
def agent_stub() -> FakeAgentStub:
    return FakeAgentStub()


@pytest.fixture
def task_stub() -> FakeTaskStub:
    return FakeTaskStub()


@pytest.fixture
def context_stub() -> FakeContextStub:
    return FakeContextStub()


@pytest.fixture
def clients(
    session_stub: FakeSessionStub,
    agent_stub: FakeAgentStub,
    task_stub: FakeTaskStub,
    context_stub: FakeContextStub,
) -> ServiceClients:
    return ServiceClients(
        session=session_stub,  # type: ignore[arg-type]
        agent=agent_stub,  # type: ignore[arg-type]
        task=task_stub,  # type: ignore[arg-type]
        context=context_stub,  # type: ignore[arg-type]
    )


@pytest.fixture
def feed() -> FakeFeed:
    return FakeFeed()


@pytest.fixture(scope="session")
def shared_app() -> FastAPI:
    """One app for every test: FastAPI builds its routes' validators on the first request
    (~50 ms for the whole API), too slow to repeat per test. Its state is replaced per test."""
    return create_app(Settings(gateway_max_body_bytes=MAX_BODY))


@pytest.fixture
def app(
    shared_app: FastAPI, settings: Settings, clients: ServiceClients, feed: FakeFeed
) -> FastAPI:
    """The shared app with fresh resources: this test's fakes and nothing else."""
    shared_app.state.resources = Resources(settings, clients=clients, events=feed)
    return shared_app


OpenSocket = Callable[..., Awaitable[WebSocketDriver]]


@pytest.fixture
def open_socket(app: FastAPI) -> OpenSocket:
    """Opens a socket on the app and checks the handshake was accepted."""

    async def open_(path: str, query: str = "") -> WebSocketDriver:
        driver = WebSocketDriver(app, path, query)
        assert (await driver.connect())["type"] == "websocket.accept"
        return driver

    return open_


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
