"""An embedded NATS server with JetStream, its limits set explicitly in a config file."""

from __future__ import annotations

import json
from pathlib import Path

import nats

from orchestrator.common.stack._server import ServerProcess
from orchestrator.common.stack.binaries import find_nats_server
from orchestrator.common.stack.net import HOST, claim_port


async def _ignore(_: Exception) -> None:
    return None


class NatsServer(ServerProcess):
    name = "NATS"
    log_name = "nats.log"

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        binary: Path | None = None,
        monitor_port: int | None = None,
        max_memory_store: str = "256MB",
        max_file_store: str = "2GB",
        start_timeout: float = 30.0,
        stop_grace: float = 15.0,
    ) -> None:
        super().__init__(data_dir, port, start_timeout=start_timeout, stop_grace=stop_grace)
        self._binary = binary
        self._requested_monitor_port = monitor_port
        self.monitor_port: int | None = None
        self.max_memory_store = max_memory_store
        self.max_file_store = max_file_store

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.port}"

    @property
    def monitor_url(self) -> str | None:
        return None if self.monitor_port is None else f"http://{HOST}:{self.monitor_port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "nats.conf"

    def _argv(self, port: int) -> list[str | Path]:
        binary = self._binary or find_nats_server()
        # This nats-server has no command-line flags for the JetStream limits: use a config.
        self.monitor_port = claim_port(self._requested_monitor_port, "NATS monitoring")
        self.config_path.write_text(self._config(port, self.monitor_port))
        return [binary, "-c", self.config_path]

    def _config(self, port: int, monitor_port: int) -> str:
        def q(value: object) -> str:
            return json.dumps(str(value))  # a JSON string is a valid NATS config string

        return (
            "# Written on every start by the orchestrator's embedded stack.\n"
            f"server_name: {q('orch-embedded')}\n"
            f"listen: {q(f'{HOST}:{port}')}\n"
            f"http: {q(f'{HOST}:{monitor_port}')}\n"
            "jetstream {\n"
            f"  store_dir: {q(self.data_dir)}\n"
            f"  max_memory_store: {self.max_memory_store}\n"
            f"  max_file_store: {self.max_file_store}\n"
            "}\n"
        )

    async def _protocol_ready(self) -> bool:
        client = await nats.connect(
            self.url,
            connect_timeout=2,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            error_cb=_ignore,  # a refused poll is expected while starting; do not log it
        )
        try:
            await client.jetstream().account_info()
            return True
        finally:
            await client.close()

    async def stop(self) -> None:
        await super().stop()
        self.monitor_port = None
