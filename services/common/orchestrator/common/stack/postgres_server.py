"""An embedded PostgreSQL: initdb on first start, then `postgres` on a loopback TCP port."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import ClassVar

import asyncpg
import psutil

from orchestrator.common.stack._proc import spawn, tail
from orchestrator.common.stack._server import ServerProcess
from orchestrator.common.stack.binaries import PostgresBinaries, find_postgres
from orchestrator.common.stack.errors import StackError
from orchestrator.common.stack.net import HOST
from orchestrator.common.stack.postgres_account import (
    reachable_install,
    reachable_pgdata,
    unprivileged_account,
)

logger = logging.getLogger(__name__)

# Sized for a 2-core dev box; fsync and synchronous_commit stay on because the data matters.
SETTINGS = {
    "listen_addresses": HOST,
    "unix_socket_directories": "",  # TCP only: no socket dir to own or clean up
    "max_connections": "200",
    "shared_buffers": "128MB",
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "max_wal_size": "1GB",
    "max_worker_processes": "4",
    "max_parallel_workers_per_gather": "1",
    # Task rows churn (each is updated a few times): let autovacuum look every few seconds, so
    # the dead index entries of busy statuses do not pile up (see task migration 006).
    "autovacuum_naptime": "5s",
    "log_min_messages": "warning",
    "log_timezone": "UTC",
    "timezone": "UTC",
}
PG_HBA = (
    "# Written by the orchestrator's embedded stack: trust, on 127.0.0.1 only.\n"
    "host all all 127.0.0.1/32 trust\n"
)


class PostgresServer(ServerProcess):
    name = "PostgreSQL"
    log_name = "postgres.log"
    stop_signal: ClassVar[int] = signal.SIGINT  # "fast" shutdown: roll back, checkpoint, exit

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        user: str = "orch",
        database: str = "orch",
        bin_dir: Path | None = None,
        start_timeout: float = 60.0,
        stop_grace: float = 30.0,
    ) -> None:
        super().__init__(data_dir, port, start_timeout=start_timeout, stop_grace=stop_grace)
        self.user = user
        self.database = database
        self._bin_dir = bin_dir
        self._bins: PostgresBinaries | None = None
        self._account = unprivileged_account() if os.geteuid() == 0 else None
        self.pgdata = self.data_dir / "pgdata"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{HOST}:{self.port}/{self.database}"

    def _working_dir(self) -> Path:
        return self.pgdata  # the one folder of ours the postgres user is sure to reach

    def _run_as(self) -> tuple[int, int] | None:
        return None if self._account is None else self._account[:2]

    def _argv(self, port: int) -> list[str | Path]:
        assert self._bins is not None
        argv: list[str | Path] = [self._bins.postgres, "-D", self.pgdata, "-p", str(port)]
        for key, value in SETTINGS.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    async def _prepare(self) -> None:
        self._bins = find_postgres(self._bin_dir)
        if self._account is not None:
            uid, gid, _ = self._account
            self._bins = PostgresBinaries(reachable_install(self._bins.bin_dir, uid, gid))
            self.pgdata = reachable_pgdata(self.data_dir / "pgdata", uid, gid)
        self._make_pgdata()
        if (self.pgdata / "PG_VERSION").exists():
            self._check_version(self._bins)
            self._clear_stale_pid()
        else:
            await self._initdb(self._bins)

    def _make_pgdata(self) -> None:
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if self._account is not None:
            os.chown(self.pgdata, *self._account[:2])
        os.chmod(self.pgdata, 0o700)  # postgres refuses a group/world-readable data dir

    def _check_version(self, bins: PostgresBinaries) -> None:
        on_disk = (self.pgdata / "PG_VERSION").read_text().strip()
        if on_disk != bins.major_version():
            raise StackError(
                f"{self.pgdata} holds a PostgreSQL {on_disk} cluster but the binaries in "
                f"{bins.bin_dir} are PostgreSQL {bins.major_version()}; use matching binaries "
                "or a new data dir"
            )

    def _clear_stale_pid(self) -> None:
        """Remove a postmaster.pid left by a crash; refuse if that postmaster still runs."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        try:
            proc = psutil.Process(pid)
            # Pids are reused (32,768 of them here): only a postmaster started on this very
            # data dir counts, not any postgres process that happens to hold the number now.
            alive = (
                proc.status() != psutil.STATUS_ZOMBIE
                and "postgres" in proc.name()
                and str(self.pgdata) in proc.cmdline()
            )
        except psutil.Error:
            alive = False  # gone, or a reused pid we cannot inspect: either way not ours
        if alive:
            raise StackError(
                f"a PostgreSQL (pid {pid}) is already running on {self.pgdata}; stop it first"
            )
        logger.warning("removing stale %s (pid %d is not running)", pid_file, pid)
        pid_file.unlink()

    async def _initdb(self, bins: PostgresBinaries) -> None:
        argv: list[str | Path] = [
            bins.initdb, "-D", self.pgdata, "-U", self.user, "-E", "UTF8",
            "--locale=C", "--auth=trust", "--no-instructions",
        ]  # fmt: skip
        logger.info("initialising a new PostgreSQL cluster in %s", self.pgdata)
        with self.log_path.open("ab") as log:
            offset = log.tell()
            proc = await spawn(argv, output=log, cwd=self.pgdata, run_as=self._run_as())
        try:
            code = await asyncio.wait_for(proc.wait(), self.start_timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            code = -1
        if code != 0:
            raise StackError(
                f"initdb failed for {self.pgdata} (exit code {code}); its last output:\n"
                f"{tail(self.log_path, offset)}"
            )
        self._write_hba()

    def _write_hba(self) -> None:
        hba = self.pgdata / "pg_hba.conf"
        hba.write_text(PG_HBA)
        if self._account is not None:
            os.chown(hba, *self._account[:2])
        os.chmod(hba, 0o600)

    async def _connect(self, database: str) -> asyncpg.Connection:
        # ssl=False: loopback only, and "prefer" would go looking for client keys in $HOME.
        return await asyncpg.connect(
            host=HOST, port=self.port, user=self.user, database=database, timeout=2, ssl=False
        )

    async def _protocol_ready(self) -> bool:
        conn = await self._connect("postgres")
        await conn.close()
        return True

    async def _after_ready(self) -> None:
        conn = await self._connect("postgres")
        try:
            exists = await conn.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", self.database
            )
            if not exists:
                # Identifiers cannot be bound parameters; quote it the way postgres does.
                quoted = '"' + self.database.replace('"', '""') + '"'
                await conn.execute(f"CREATE DATABASE {quoted}")
                logger.info("created database %s", self.database)
        finally:
            await conn.close()
