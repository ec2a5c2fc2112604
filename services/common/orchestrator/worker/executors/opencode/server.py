"""A worker's own `opencode serve` child: found, started isolated, waited for, kept running,
stopped.

Isolated means its home, config, data, cache and state live under a folder of ours, so a
user's OpenCode settings never leak in and two workers never share a database; the config is
the one file we give it. Kept running means a server that exits by itself (a crash, an OOM kill)
is started again on the same port (`supervise`), so the worker's tasks fail over only while it
is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from orchestrator.common.stack import pick_free_port, setpriv_prefix

log = logging.getLogger(__name__)

# Where `make install` puts OpenCode, relative to the project folder.
PROJECT_BINARY = Path(".opencode/node_modules/.bin/opencode")
START_SECONDS = 60.0
# A health request sent while the server is still starting can hang unanswered.
PROBE_SECONDS = 1.0
STOP_GRACE_SECONDS = 5.0
# Pauses between restarts of a server that keeps exiting: doubled after each failed start.
RESTART_MIN_SECONDS = 1.0
RESTART_MAX_SECONDS = 30.0
# setpriv (util-linux) has the server stopped when the worker dies, kill -9 included, so no
# orphaned server keeps a port and runs tools.
DIES_WITH_WORKER = setpriv_prefix(signal.SIGTERM)
BASE_CONFIG: dict[str, Any] = {
    "$schema": "https://opencode.ai/config.json",
    "share": "disabled",
    "autoupdate": False,
}


class OpenCodeServerError(RuntimeError):
    pass


def find_binary(explicit: str | Path | None = None, start: Path | None = None) -> Path:
    """`explicit` when given; else the project's install (`make install`) found from `start`
    (default: the current folder) or from this package upwards; else `opencode` on PATH."""
    if explicit:
        path = Path(explicit).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise OpenCodeServerError(f"OpenCode binary {path} does not exist or is not executable")
    origins = [(start or Path.cwd()).resolve(), Path(__file__).resolve()]
    for origin in origins:
        for folder in (origin, *origin.parents):
            candidate = folder / PROJECT_BINARY
            if candidate.exists():
                return candidate
    on_path = shutil.which("opencode")
    if on_path:
        return Path(on_path)
    raise OpenCodeServerError(
        "OpenCode not found: run `make install` (it installs it into .opencode/), pass "
        "--opencode-bin, or set ORCH_OPENCODE_BIN"
    )


PASSWORD_ENV = "OPENCODE_SERVER_PASSWORD"
USERNAME_ENV = "OPENCODE_SERVER_USERNAME"
DEFAULT_USERNAME = "opencode"


def basic_auth(env: Mapping[str, str]) -> tuple[str, str] | None:
    """The (user, password) a server started with `env` asks for: OpenCode turns on HTTP basic
    auth when OPENCODE_SERVER_PASSWORD is set (user `opencode` unless OPENCODE_SERVER_USERNAME
    names another); None when it runs open."""
    password = env.get(PASSWORD_ENV, "")
    if not password:
        return None
    return env.get(USERNAME_ENV, "") or DEFAULT_USERNAME, password


def isolated_environment(
    state_dir: Path, config_file: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    env = dict(os.environ)
    home = state_dir / "home"
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_STATE_HOME=str(home / ".local/state"),
        OPENCODE_CONFIG=str(config_file),
        OPENCODE_DISABLE_AUTOUPDATE="1",
        OPENCODE_DISABLE_MODELS_FETCH="1",
    )
    env.update(extra or {})
    return env


class OpenCodeServer:
    def __init__(
        self,
        binary: Path,
        state_dir: Path,
        *,
        config: Mapping[str, Any] | None = None,
        config_file: Path | None = None,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        """`config` is written as the server's opencode.json (over a base that disables sharing
        and updates); `config_file` names one to use as it is instead."""
        self.binary = binary
        self.state_dir = state_dir
        self.port = port or pick_free_port()
        self._config = {**BASE_CONFIG, **(config or {})}
        self._config_file = config_file
        self._env = dict(env or {})
        self._proc: asyncio.subprocess.Process | None = None
        # Set by `stop`: an exit from then on is wanted, not a crash to recover from.
        self._stopping = False
        self.restarts = 0

    @property
    def auth(self) -> tuple[str, str] | None:
        """What its clients must present, from the environment it runs with."""
        return basic_auth({**os.environ, **self._env})

    @property
    def pid(self) -> int | None:
        """The running server's process id (None while it is down)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "opencode.log"

    async def __aenter__(self) -> OpenCodeServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self, within: float = START_SECONDS) -> str:
        """Starts the server and returns its URL once it answers its health check."""
        config_file = await asyncio.to_thread(self._prepare)
        env = isolated_environment(self.state_dir, config_file, self._env)
        with self.log_file.open("ab") as out:
            self._proc = await asyncio.create_subprocess_exec(
                *DIES_WITH_WORKER,
                str(self.binary),
                "serve",
                "--port",
                str(self.port),
                "--hostname",
                "127.0.0.1",
                cwd=self.state_dir,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                # Its own process group: stopping it also stops the tools it runs.
                start_new_session=True,
            )
        try:
            version = await self._wait_healthy(within)
        except BaseException:
            await self._halt(STOP_GRACE_SECONDS)
            raise
        log.info("OpenCode %s serving at %s (pid %d)", version, self.url, self._proc.pid)
        return self.url

    async def supervise(self) -> None:
        """Starts the server again whenever it exits by itself, on the same port, pausing
        longer after each start that fails; returns once `stop` was called (or is cancelled)."""
        delay = RESTART_MIN_SECONDS
        while not self._stopping:
            proc = self._proc
            if proc is not None:
                code = await proc.wait()
                if self._stopping or self._proc is not proc:
                    continue
                log.warning(
                    "OpenCode at %s exited (code %s); starting it again in %.0f s. Log tail:\n%s",
                    self.url, code, delay, self._log_tail(800),
                )  # fmt: skip
                self._proc = None
            await asyncio.sleep(delay)
            if self._stopping:
                return
            try:
                await self.start()
            except OpenCodeServerError as exc:
                delay = min(delay * 2, RESTART_MAX_SECONDS)
                log.error("OpenCode did not start again (next try in %.0f s): %s", delay, exc)
                continue
            self.restarts += 1
            delay = RESTART_MIN_SECONDS

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM to its process group, SIGKILL after `grace` seconds; no restart follows."""
        self._stopping = True
        await self._halt(grace)

    async def _halt(self, grace: float) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), grace)
                return
        await proc.wait()

    def _prepare(self) -> Path:
        (self.state_dir / "home").mkdir(parents=True, exist_ok=True)
        if self._config_file is not None:
            return self._config_file
        path = self.state_dir / "opencode.json"
        path.write_text(json.dumps(self._config, indent=2))
        return path

    async def _wait_healthy(self, within: float) -> str:
        deadline = time.monotonic() + within
        auth = httpx.BasicAuth(*self.auth) if self.auth else None
        async with httpx.AsyncClient(base_url=self.url, timeout=PROBE_SECONDS, auth=auth) as http:
            while time.monotonic() < deadline:
                if self._proc is None or self._proc.returncode is not None:
                    raise OpenCodeServerError(f"OpenCode exited at start:\n{self._log_tail()}")
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    reply = await http.get("/global/health")
                    if reply.status_code == 200 and reply.json().get("healthy"):
                        return str(reply.json().get("version", "?"))
                await asyncio.sleep(0.2)
        raise OpenCodeServerError(f"OpenCode did not become healthy within {within:.0f}s")

    def _log_tail(self, size: int = 2000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-size:]
        except OSError:
            return ""
