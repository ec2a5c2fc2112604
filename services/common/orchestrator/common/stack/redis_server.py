"""An embedded Valkey (or Redis) persisting through its append-only file."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as aioredis

from orchestrator.common.stack._server import ServerProcess
from orchestrator.common.stack.binaries import find_redis_server
from orchestrator.common.stack.net import HOST


class RedisServer(ServerProcess):
    name = "Redis/Valkey"
    log_name = "valkey.log"

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        binary: Path | None = None,
        start_timeout: float = 30.0,
        stop_grace: float = 15.0,
    ) -> None:
        super().__init__(data_dir, port, start_timeout=start_timeout, stop_grace=stop_grace)
        self._binary = binary

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def _argv(self, port: int) -> list[str | Path]:
        binary = self._binary or find_redis_server()
        return [
            binary,
            "--port", str(port),
            "--bind", HOST,
            "--dir", self.data_dir,
            "--daemonize", "no",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",  # no RDB snapshots: the AOF alone is the durable copy
        ]  # fmt: skip

    async def _protocol_ready(self) -> bool:
        client = aioredis.Redis(host=HOST, port=self.port, socket_timeout=2)
        try:
            return bool(await client.ping())
        finally:
            await client.aclose()
