"""The worker's own OpenCode server is started again when it dies, on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import httpx
import pytest

from orchestrator.worker.executors.opencode.server import OpenCodeServer
from tests.support.mesh import wait_until
from tests.support.opencode import offline_environment, opencode_binary

pytestmark = pytest.mark.timeout(120)


async def test_a_server_that_dies_is_started_again_on_its_port(tmp_path: Path) -> None:
    server = OpenCodeServer(opencode_binary(), tmp_path, env=offline_environment())
    url = await server.start()
    keeper = asyncio.create_task(server.supervise())
    try:
        first = server.pid
        assert first is not None
        os.killpg(first, signal.SIGKILL)  # a crash: the whole process group, at once

        async def back() -> bool:
            if server.pid in (None, first):
                return False
            async with httpx.AsyncClient(base_url=url, timeout=2) as http:
                with contextlib.suppress(httpx.HTTPError):
                    return (await http.get("/global/health")).status_code == 200
            return False

        await wait_until(back, within=60, what="OpenCode serving again at the same URL")
        assert server.restarts == 1 and server.url == url
    finally:
        await server.stop()
        # Stopped on purpose: the keeper ends instead of starting it again.
        await asyncio.wait_for(keeper, 10)
    assert server.pid is None and server.restarts == 1


async def test_a_password_protected_server_is_reached_with_basic_auth(tmp_path: Path) -> None:
    from orchestrator.worker.executors.opencode.client import OpenCodeClient, OpenCodeRefused

    env = {**offline_environment(), "OPENCODE_SERVER_PASSWORD": "s3cret-pass"}
    server = OpenCodeServer(opencode_binary(), tmp_path, env=env)
    url = await server.start()  # its health probe presents the password too
    try:
        assert server.auth == ("opencode", "s3cret-pass")
        stranger = OpenCodeClient(url, attempts=1)
        with pytest.raises(OpenCodeRefused) as refused:
            await stranger.health()
        assert refused.value.status == 401
        await stranger.aclose()
        trusted = OpenCodeClient(url, auth=server.auth)
        assert (await trusted.health())["healthy"] is True
        await trusted.aclose()
    finally:
        await server.stop()
