"""An OpenCode executor ready to run tasks: on a server given by URL, or on a child server the
worker starts for itself, starts again should it exit, and stops when it is done."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from orchestrator.worker.executors.opencode.client import OpenCodeClient, OpenCodeError
from orchestrator.worker.executors.opencode.executor import (
    DEFAULT_TIMEOUT_SECONDS,
    OpenCodeExecutor,
)
from orchestrator.worker.executors.opencode.server import (
    OpenCodeServer,
    OpenCodeServerError,
    basic_auth,
    find_binary,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpenCodeOptions:
    # A running `opencode serve`; None starts one for the worker.
    url: str | None = None
    # The binary for the worker's own server; None looks for the project's install.
    binary: str | None = None
    # `provider/model` for every prompt (and the own server's default).
    model: str | None = None
    # An opencode.json for the own server; None writes a minimal one.
    config_file: Path | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS


@contextlib.asynccontextmanager
async def opencode_executor(
    options: OpenCodeOptions, state_dir: Path
) -> AsyncIterator[OpenCodeExecutor]:
    """The executor, its server answering; `state_dir` holds the own server's home and log."""
    server: OpenCodeServer | None = None
    keeper: asyncio.Task[None] | None = None
    url = options.url
    # OpenCode's own variables: a server given by URL is reached with them, and the worker's own
    # server inherits them (and so asks for them).
    auth = basic_auth(os.environ)
    if not url:
        server = OpenCodeServer(
            find_binary(options.binary),
            state_dir,
            config={"model": options.model} if options.model else None,
            config_file=options.config_file,
        )
        url = await server.start()
        auth = server.auth
        keeper = asyncio.create_task(server.supervise(), name="opencode-keeper")
    executor = OpenCodeExecutor(
        OpenCodeClient(url, auth=auth), model=options.model, timeout_seconds=options.timeout_seconds
    )
    try:
        try:
            health = await executor.client.health()
        except OpenCodeError as exc:
            raise OpenCodeServerError(f"no OpenCode server answers at {url}: {exc}") from exc
        log.info("tasks run on OpenCode %s at %s", health.get("version", "?"), url)
        yield executor
    finally:
        await executor.aclose()
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        if server is not None:
            await server.stop()
