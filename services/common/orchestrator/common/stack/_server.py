"""What the three embedded servers share: a data dir, a port, a log file, start/ready/stop."""

from __future__ import annotations

import abc
import asyncio
import logging
import os
import signal
import time
from pathlib import Path
from typing import ClassVar

from orchestrator.common.stack import _proc
from orchestrator.common.stack.errors import StackError
from orchestrator.common.stack.net import claim_port, tcp_accepts

logger = logging.getLogger(__name__)

# Traversable but not listable, so an unprivileged server user can reach its own subdir.
DIR_MODE = 0o711
# Servers need nothing from our environment; a fixed one keeps them reproducible.
SERVER_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C", "TZ": "UTC"}


def make_dir(path: Path) -> None:
    """Create `path` and missing parents with DIR_MODE; existing dirs are left as they are."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(directory, DIR_MODE)  # mkdir's mode is filtered by the umask


# Starts tried with a fresh port when the one picked was taken before the server bound it.
PORT_ATTEMPTS = 3
_ADDRESS_IN_USE = "address already in use"


class ServerProcess(abc.ABC):
    """One embedded server, persisting into `data_dir`, on `port` (None: any free one)."""

    name: ClassVar[str]
    log_name: ClassVar[str]
    stop_signal: ClassVar[int] = signal.SIGTERM

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        start_timeout: float = 60.0,
        stop_grace: float = 30.0,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self._requested_port = port
        self._port: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._log_offset = 0
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace

    @property
    def log_path(self) -> Path:
        return self.data_dir / self.log_name

    @property
    def port(self) -> int:
        if self._port is None:
            raise StackError(f"{self.name} is not running; start() it first")
        return self._port

    @property
    @abc.abstractmethod
    def url(self) -> str: ...

    @property
    def pids(self) -> list[int]:
        return _proc.process_tree(self._proc.pid if self._proc else None)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        if self.running:
            return
        began = time.monotonic()
        make_dir(self.data_dir)
        await self._prepare()
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = claim_port(self._requested_port, self.name)
            self._proc = await self._launch(port)
            self._port = port
            try:
                await _proc.poll_ready(
                    self._proc,
                    self._ready,
                    what=self.name,
                    within=self.start_timeout,
                    output_tail=self.log_tail,
                )
                await self._after_ready()
            except StackError as exc:
                # A port picked free can be taken before the server binds it (by any
                # connection's local end, say): pick another rather than fail.
                lost = self._requested_port is None and _ADDRESS_IN_USE in str(exc).lower()
                await self.stop()
                if not lost or attempt == PORT_ATTEMPTS:
                    raise
                logger.warning("%s lost port %d before binding it; trying another", self.name, port)
                continue
            except BaseException:
                await self.stop()
                raise
            break
        # Clients hold this address: a restart (stop, then start) comes back on it, or fails.
        self._requested_port = self._port
        logger.info("%s ready at %s in %.1f s", self.name, self.url, time.monotonic() - began)

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            await _proc.terminate(proc, self.name, self.stop_signal, self.stop_grace)
            logger.info("%s stopped (exit code %s)", self.name, proc.returncode)
        self._port = None

    def log_tail(self) -> str:
        return _proc.tail(self.log_path, self._log_offset)

    def _working_dir(self) -> Path:
        return self.data_dir

    async def _launch(self, port: int) -> asyncio.subprocess.Process:
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            return await _proc.spawn(
                self._argv(port),
                output=log,
                env=SERVER_ENV,
                cwd=self._working_dir(),
                run_as=self._run_as(),
                death_signal=self.stop_signal,
            )

    async def _ready(self) -> bool:
        return await tcp_accepts(self.port) and await self._protocol_ready()

    async def _prepare(self) -> None:
        """Work before the first launch (e.g. initdb)."""
        return None

    async def _after_ready(self) -> None:
        """Work once the server answers (e.g. create the database)."""
        return None

    def _run_as(self) -> tuple[int, int] | None:
        return None

    @abc.abstractmethod
    def _argv(self, port: int) -> list[str | Path]: ...

    @abc.abstractmethod
    async def _protocol_ready(self) -> bool: ...
