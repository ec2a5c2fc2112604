"""Child-process plumbing shared by the servers and the supervisor."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import IO

import psutil

from orchestrator.common.stack.errors import StackError

logger = logging.getLogger(__name__)

ReadyCheck = Callable[[], Awaitable[bool]]

# setpriv (util-linux) sets the child's parent-death signal and user, then execs the program.
# Doing either in Python (preexec_fn, or subprocess's user=/group=) makes subprocess fork rather
# than vfork, and a forked child of a process whose gRPC threads are busy can crash in gRPC's
# fork handlers before it reaches exec (seen as initdb dying of SIGSEGV).
_SETPRIV = shutil.which("setpriv")


def setpriv_prefix(sig: int, run_as: tuple[int, int] | None = None) -> list[str]:
    """An argv prefix: `sig` to the child when we die, and the user it runs as."""
    if _SETPRIV is None:
        return []
    prefix = [_SETPRIV, "--pdeathsig", signal.Signals(sig).name.removeprefix("SIG")]
    if run_as is not None:
        uid, gid = run_as
        prefix += ["--reuid", str(uid), "--regid", str(gid), "--clear-groups"]
    return [*prefix, "--"]


async def spawn(
    argv: Sequence[str | Path],
    *,
    output: IO[bytes] | int,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    run_as: tuple[int, int] | None = None,
    death_signal: int = signal.SIGTERM,
    limit: int = 1 << 16,
) -> asyncio.subprocess.Process:
    """Start a child in its own process group (so stop can sweep its descendants too), set to
    receive `death_signal` when this process dies, so nothing is orphaned."""
    program, *args = [*setpriv_prefix(death_signal, run_as), *(str(a) for a in argv)]
    # Without setpriv, subprocess switches the user itself (and so forks).
    switch = run_as if _SETPRIV is None else None
    try:
        return await asyncio.create_subprocess_exec(
            program,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            user=switch[0] if switch else None,
            group=switch[1] if switch else None,
            extra_groups=[] if switch else None,  # drop root's supplementary groups too
            limit=limit,
        )
    except OSError as exc:
        raise StackError(f"cannot start {argv[0]}: {exc}") from exc


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def terminate(
    proc: asyncio.subprocess.Process, what: str, sig: int = signal.SIGTERM, grace: float = 10.0
) -> None:
    """`sig`, then SIGKILL to the whole group after `grace` seconds; leftovers are swept too."""
    if proc.returncode is None:
        with suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            logger.warning("%s did not exit %.0f s after signal %d; killing it", what, grace, sig)
            kill_group(proc.pid)
            await proc.wait()
    kill_group(proc.pid)  # e.g. postgres backends left by a killed postmaster


def process_tree(pid: int | None) -> list[int]:
    """The process and its live descendants, for memory accounting."""
    if pid is None:
        return []
    try:
        root = psutil.Process(pid)
        if root.status() == psutil.STATUS_ZOMBIE:
            return []
        return [pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.Error:
        return []


def tail(path: Path, since: int = 0, lines: int = 30) -> str:
    """The last lines written to a log file after byte offset `since`."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(since, size - 65536))  # logs are never rotated; read only the end
            data = fh.read()
    except OSError:
        return "(no log output)"
    text = data.decode(errors="replace").rstrip()
    return "\n".join(text.splitlines()[-lines:]) or "(no log output)"


async def poll_ready(
    proc: asyncio.subprocess.Process,
    check: ReadyCheck,
    *,
    what: str,
    within: float,
    output_tail: Callable[[], str],
) -> None:
    """Poll `check` until True; StackError (with the output tail) on exit or timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last_error: BaseException | None = None
    while True:
        if proc.returncode is not None:
            raise StackError(
                f"{what} exited with code {proc.returncode} while starting; "
                f"its last output:\n{output_tail()}"
            )
        try:
            if await asyncio.wait_for(check(), max(1.0, deadline - loop.time())):
                return
        except Exception as exc:  # any failure just means "not ready yet"
            last_error = exc
        if loop.time() >= deadline:
            reason = f" (last error: {last_error})" if last_error else ""
            raise StackError(
                f"{what} was not ready within {within:.0f} s{reason}; "
                f"its last output:\n{output_tail()}"
            )
        await asyncio.sleep(0.1)
