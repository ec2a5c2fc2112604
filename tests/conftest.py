"""Shared fixtures: real PostgreSQL, Redis and NATS (embedded, or ORCH_*_URL), and the services.

Tests use unique ids rather than teardown, so they can share one stack per run.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from orchestrator.common.settings import Settings
from orchestrator.common.stack import EmbeddedStack, pick_free_port
from tests.support.mesh import running_gateway, running_service, running_session_service


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(str(item.fspath)).relative_to(Path(__file__).parent).parts[0]
        if tier in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
async def stack() -> AsyncIterator[EmbeddedStack]:
    external = Settings()
    data_dir = Path(tempfile.mkdtemp(prefix="orch-test-"))
    # The embedded PostgreSQL runs as an unprivileged user when we are root; it must enter here.
    data_dir.chmod(0o755)
    try:
        async with EmbeddedStack(
            data_dir,
            database_url=external.database_url,
            nats_url=external.nats_url,
            redis_url=external.redis_url,
        ) as running:
            yield running
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(stack: EmbeddedStack) -> Settings:
    return Settings(
        database_url=stack.database_url,
        nats_url=stack.nats_url,
        redis_url=stack.redis_url,
        session_addr=f"127.0.0.1:{pick_free_port()}",
        agent_addr=f"127.0.0.1:{pick_free_port()}",
        task_addr=f"127.0.0.1:{pick_free_port()}",
        context_addr=f"127.0.0.1:{pick_free_port()}",
        gateway_port=pick_free_port(),
        sweep_interval_seconds=0.2,
        shutdown_grace_seconds=1.0,
        log_json=False,
    )


@pytest.fixture(scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    from orchestrator.common.db import create_pool

    p = await create_pool(str(settings.database_url), max_size=20)
    yield p
    await p.close()


@pytest.fixture(scope="session")
async def session_service(settings: Settings) -> AsyncIterator[str]:
    """The session service, in this process, listening on settings.session_addr."""
    async with running_session_service(settings) as address:
        yield address


@pytest.fixture
async def nc(settings: Settings) -> AsyncIterator[object]:
    import nats

    client = await nats.connect(str(settings.nats_url))
    yield client
    with contextlib.suppress(Exception):
        await client.drain()


@pytest.fixture(scope="session")
async def agent_service(settings: Settings) -> AsyncIterator[str]:
    """The agent service, in this process, listening on settings.agent_addr."""
    from orchestrator.agent.main import serve

    async with running_service(serve, settings.agent_addr, "agent", settings) as address:
        yield address


@pytest.fixture(scope="session")
async def task_service(settings: Settings, agent_service: str) -> AsyncIterator[str]:
    """The task service (it routes through the agent service), on settings.task_addr."""
    from orchestrator.task.main import serve

    async with running_service(serve, settings.task_addr, "task", settings) as address:
        yield address


@pytest.fixture(scope="session")
async def context_service(settings: Settings) -> AsyncIterator[str]:
    """The context service, in this process, listening on settings.context_addr."""
    from orchestrator.context.main import serve

    async with running_service(serve, settings.context_addr, "context", settings) as address:
        yield address


@pytest.fixture(scope="session")
async def gateway(
    settings: Settings,
    session_service: str,
    agent_service: str,
    task_service: str,
    context_service: str,
) -> AsyncIterator[str]:
    """Base URL of the gateway, in this process, in front of all four services. It checks no
    API keys: tests/e2e/test_gateway_security.py runs gateways that do."""
    async with running_gateway(settings.model_copy(update={"gateway_auth": "off"})) as base:
        yield base
