"""Runs services of the mesh inside the test process, against the real servers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from orchestrator.common.probes import grpc_serving
from orchestrator.common.settings import Settings
from orchestrator.session.main import serve as serve_session
from orchestrator.worker import Worker


async def wait_until(
    check: Callable[[], Awaitable[bool]], within: float = 20.0, what: str = "condition"
) -> None:
    """Polls an async predicate until it holds; fails the test with `what` otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {within}s waiting for {what}")


Serve = Callable[[Settings, Awaitable[object]], Coroutine[Any, Any, None]]


@contextlib.asynccontextmanager
async def running_service(
    serve: Serve, address: str, name: str, settings: Settings
) -> AsyncIterator[str]:
    """Runs a service's `serve(settings, until)` as a task here until the block ends."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop.wait()))
    try:
        await wait_until(
            lambda: _serving_or_raise(task, address, name, settings), what=f"the {name} service"
        )
        yield address
    finally:
        stop.set()
        await task


@contextlib.asynccontextmanager
async def running_session_service(settings: Settings) -> AsyncIterator[str]:
    async with running_service(serve_session, settings.session_addr, "session", settings) as a:
        yield a


async def _serving_or_raise(
    task: asyncio.Task[None], address: str, name: str, settings: Settings
) -> bool:
    if task.done():
        task.result()
        raise AssertionError(f"the {name} service stopped during start-up")
    return await grpc_serving(address, settings)


@contextlib.asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[str]:
    """The gateway app served by uvicorn in this process; yields its base URL."""
    import uvicorn

    from orchestrator.gateway.app import create_app

    app = create_app(settings, dashboard_dir=None)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=settings.gateway_port,
        log_config=None,
        ws="websockets-sansio",
        lifespan="on",
        # A socket handler that outlives its client (the event relay's pump sometimes ignores
        # its cancellation) must not hold the shutdown forever.
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{settings.gateway_port}"
    try:
        await wait_until(lambda: _started_or_raise(task, server), what="the gateway")
        yield base
    finally:
        server.should_exit = True
        await task


async def _started_or_raise(task: asyncio.Task[None], server: object) -> bool:
    if task.done():
        task.result()
        raise AssertionError("the gateway stopped during start-up")
    return bool(getattr(server, "started", False))


@contextlib.asynccontextmanager
async def worker_running(worker: Worker, stop_within: float | None = None) -> AsyncIterator[Worker]:
    """Runs `worker` as a task here until the block ends, then stops it gracefully (within
    `stop_within` seconds, when given). A worker that dies before it is ready fails at once,
    with its own error."""
    running = asyncio.create_task(worker.run())
    ready = asyncio.create_task(worker.ready.wait())
    await asyncio.wait({running, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    if running.done():
        running.result()
    assert worker.ready.is_set(), "the worker did not become ready"
    try:
        yield worker
    finally:
        await asyncio.wait_for(worker.stop(), stop_within)
        await running
