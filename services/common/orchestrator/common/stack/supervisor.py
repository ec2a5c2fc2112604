"""Runs our services and the gateway as child processes for `orch up`, restarting crashes."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TextIO

from orchestrator.common.stack import _proc
from orchestrator.common.stack._proc import ReadyCheck
from orchestrator.common.stack.errors import StackError

logger = logging.getLogger(__name__)

_LINE_LIMIT = 1 << 20  # longer output lines are dropped with a marker, not fatal


@dataclass(eq=False)
class _Child:
    name: str
    argv: list[str]
    env: dict[str, str] | None
    ready: ReadyCheck
    cwd: Path | None
    proc: asyncio.subprocess.Process | None = None
    output: deque[str] = field(default_factory=lambda: deque(maxlen=40))
    restarts: deque[float] = field(default_factory=deque)
    pump: asyncio.Task[None] | None = None
    watch: asyncio.Task[None] | None = None

    def output_tail(self) -> str:
        return "\n".join(self.output) or "(no output)"


class Supervisor:
    """Start children in order (each gated on its readiness check), restart crashes with backoff,
    give up after `max_restarts` restarts of one child within `restart_window` seconds."""

    def __init__(
        self,
        *,
        grace: float = 10.0,
        ready_timeout: float = 60.0,
        max_restarts: int = 5,
        restart_window: float = 60.0,
        backoff: float = 0.5,
        output: TextIO | None = None,
    ) -> None:
        self.grace = grace
        self.ready_timeout = ready_timeout
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        self.backoff = backoff
        self._out = output if output is not None else sys.stdout
        self._children: list[_Child] = []
        self._stopping = False
        self._stopped = asyncio.Event()
        self._stop_task: asyncio.Task[None] | None = None
        self.failure: str | None = None

    def add(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None,
        ready: ReadyCheck,
        *,
        cwd: Path | None = None,
    ) -> None:
        """Register a child; `env` is its whole environment (None: inherit ours)."""
        if any(child.name == name for child in self._children):
            raise StackError(f"a child named {name!r} was already added")
        env_copy = dict(env) if env is not None else None
        self._children.append(_Child(name, list(argv), env_copy, ready, cwd))

    def pids(self) -> dict[str, list[int]]:
        """Process ids of each running child and its descendants, by name."""
        return {c.name: _proc.process_tree(c.proc.pid) for c in self._children if c.proc}

    async def start(self) -> None:
        """Start every child in the order added, waiting for each to be ready."""
        try:
            for child in self._children:
                await self._launch(child)
                await self._await_ready(child)
                logger.info("%s is ready (pid %d)", child.name, self._pid(child))
        except BaseException:
            await self.stop()
            raise
        for child in self._children:
            child.watch = asyncio.create_task(self._watch(child), name=f"watch-{child.name}")

    async def wait(self) -> None:
        """Return once stopped; raise StackError if the supervisor gave up on a child."""
        await self._stopped.wait()
        if self.failure is not None:
            raise StackError(self.failure)

    async def stop(self) -> None:
        """SIGTERM the children in reverse order, each SIGKILLed after the grace period."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        # Watchers first, so no restart can race the shutdown.
        watches = [c.watch for c in self._children if c.watch is not None]
        for watch in watches:
            watch.cancel()
        await asyncio.gather(*watches, return_exceptions=True)
        for child in reversed(self._children):
            if child.proc is not None:
                await _proc.terminate(child.proc, child.name, signal.SIGTERM, self.grace)
            await self._drain(child)
        self._stopped.set()

    async def __aenter__(self) -> Supervisor:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @staticmethod
    def _pid(child: _Child) -> int:
        return child.proc.pid if child.proc is not None else -1

    async def _launch(self, child: _Child) -> None:
        child.proc = await _proc.spawn(
            child.argv,
            output=asyncio.subprocess.PIPE,
            env=child.env,
            cwd=child.cwd,
            limit=_LINE_LIMIT,
        )
        assert child.proc.stdout is not None
        child.pump = asyncio.create_task(self._pump(child, child.proc.stdout))

    async def _pump(self, child: _Child, stream: asyncio.StreamReader) -> None:
        """Forward the child's output, each line prefixed with its name."""
        while True:
            try:
                raw = await stream.readline()
            except ValueError:
                raw = b"[output line too long; dropped]\n"
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip("\r\n")
            child.output.append(line)
            self._out.write(f"{child.name} | {line}\n")
            self._out.flush()

    @staticmethod
    async def _drain(child: _Child) -> None:
        """Let the output pump finish, unless something that escaped the group holds the pipe."""
        if child.pump is not None:
            _, pending = await asyncio.wait({child.pump}, timeout=2.0)
            for task in pending:
                task.cancel()

    async def _await_ready(self, child: _Child) -> None:
        assert child.proc is not None
        try:
            await _proc.poll_ready(
                child.proc,
                child.ready,
                what=child.name,
                within=self.ready_timeout,
                output_tail=child.output_tail,
            )
        except StackError:
            await _proc.terminate(child.proc, child.name, signal.SIGTERM, self.grace)
            raise

    async def _watch(self, child: _Child) -> None:
        """Restart the child whenever it exits, until stopped or it crashes too often."""
        while not self._stopping:
            code = await child.proc.wait() if child.proc is not None else None
            if child.proc is not None:
                _proc.kill_group(child.proc.pid)  # leftovers might hold its port
            await self._drain(child)  # so its last words are printed before we report the exit
            if self._stopping:
                return
            delay = self._record_restart(child, code)
            if delay is None:
                return
            logger.warning("%s exited (code %s); restarting in %.1f s", child.name, code, delay)
            await asyncio.sleep(delay)
            if self._stopping:
                return
            try:
                await self._launch(child)
                await self._await_ready(child)
                logger.info("%s restarted (pid %d)", child.name, self._pid(child))
            except StackError as exc:
                logger.warning("restarting %s failed: %s", child.name, exc)

    def _record_restart(self, child: _Child, code: int | None) -> float | None:
        """The backoff before the next restart, or None after giving up (and stopping all)."""
        now = time.monotonic()
        while child.restarts and now - child.restarts[0] > self.restart_window:
            child.restarts.popleft()
        if len(child.restarts) >= self.max_restarts:
            self.failure = (
                f"{child.name} exited (code {code}) after {self.max_restarts} restarts within "
                f"{self.restart_window:.0f} s; stopping everything. Its last output:\n"
                f"{child.output_tail()}"
            )
            logger.error("%s", self.failure)
            self._stop_task = asyncio.create_task(self.stop())
            return None
        child.restarts.append(now)
        return min(self.backoff * 2.0 ** (len(child.restarts) - 1), 30.0)
