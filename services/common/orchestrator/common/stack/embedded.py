"""PostgreSQL, Valkey and NATS for one machine: embedded unless an external URL is given."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from types import TracebackType

from orchestrator.common.stack._server import ServerProcess, make_dir
from orchestrator.common.stack.errors import StackError
from orchestrator.common.stack.nats_server import NatsServer
from orchestrator.common.stack.postgres_server import PostgresServer
from orchestrator.common.stack.redis_server import RedisServer

logger = logging.getLogger(__name__)


class EmbeddedStack:
    """Starts the servers whose URL was not given (under data_dir/<name>), stops them on exit."""

    def __init__(
        self,
        data_dir: Path,
        *,
        database_url: str | None = None,
        nats_url: str | None = None,
        redis_url: str | None = None,
        postgres_port: int | None = None,
        nats_port: int | None = None,
        redis_port: int | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self._external = {"postgres": database_url, "nats": nats_url, "redis": redis_url}
        self._servers: dict[str, ServerProcess] = {}
        if database_url is None:
            self._servers["postgres"] = PostgresServer(self.data_dir / "postgres", postgres_port)
        if nats_url is None:
            self._servers["nats"] = NatsServer(self.data_dir / "nats", nats_port)
        if redis_url is None:
            self._servers["redis"] = RedisServer(self.data_dir / "redis", redis_port)
        self.startup_seconds: float | None = None

    @property
    def servers(self) -> dict[str, ServerProcess]:
        """The embedded servers (not the external ones), by name."""
        return dict(self._servers)

    def _url(self, name: str) -> str:
        external = self._external[name]
        if external is not None:
            return external
        server = self._servers[name]
        if not server.running:
            raise StackError(f"the embedded {server.name} is not running; start the stack first")
        return server.url

    @property
    def database_url(self) -> str:
        return self._url("postgres")

    @property
    def nats_url(self) -> str:
        return self._url("nats")

    @property
    def redis_url(self) -> str:
        return self._url("redis")

    def pids(self) -> dict[str, list[int]]:
        """Process ids of each running embedded server (all its processes), by name."""
        return {name: server.pids for name, server in self._servers.items() if server.running}

    async def start(self) -> None:
        """Start all embedded servers at once; if any fails, stop the others and raise."""
        began = time.monotonic()
        if self._servers:
            make_dir(self.data_dir)
        results = await asyncio.gather(
            *(server.start() for server in self._servers.values()), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.stop()
            for extra in errors[1:]:
                logger.error("also failed while starting the stack: %s", extra)
            raise errors[0]
        self.startup_seconds = time.monotonic() - began
        logger.info("embedded stack ready in %.1f s", self.startup_seconds)

    async def stop(self) -> None:
        """Stop every embedded server (at once); external services are left alone."""
        results = await asyncio.gather(
            *(server.stop() for server in self._servers.values()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                logger.error("error while stopping the stack: %s", result)

    async def __aenter__(self) -> EmbeddedStack:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
