"""The embedded stack against real binaries: PostgreSQL, Valkey, NATS and the supervisor."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import nats
import psutil
import pytest
import redis.asyncio as aioredis

from orchestrator.common.stack import (
    EmbeddedStack,
    PostgresServer,
    RedisServer,
    StackError,
    Supervisor,
    pick_free_port,
    tcp_accepts,
)
from orchestrator.common.stack.postgres_account import (
    blocking_folder,
    reachable_install,
    reachable_pgdata,
    unprivileged_account,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio, pytest.mark.timeout(120)]

# A child that listens on argv[1] (so readiness is a TCP connect) and says so.
LISTENER = textwrap.dedent(
    """
    import socket, sys
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(sys.argv[1])))
    sock.listen()
    print("listening on", sys.argv[1], flush=True)
    while True:
        sock.accept()[0].close()
    """
)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not tmp_path: it is 0700, and PostgreSQL runs as another user when we are root.
    path = Path(tempfile.mkdtemp(prefix="orch-stack-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


async def wait_until_dead(pids: list[int], within: float = 15.0) -> list[int]:
    """The pids still alive after `within` seconds (empty when all died)."""
    for _ in range(int(within / 0.1)):
        if not any(alive(pid) for pid in pids):
            return []
        await asyncio.sleep(0.1)
    return [pid for pid in pids if alive(pid)]


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


async def write_everything(stack: EmbeddedStack) -> None:
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)")
        await conn.execute("INSERT INTO notes VALUES (1, 'kept')")
        assert await conn.fetchval("SELECT body FROM notes WHERE id = 1") == "kept"
    finally:
        await conn.close()
    client = aioredis.Redis.from_url(stack.redis_url)
    try:
        await client.set("note", "kept")
        assert await client.get("note") == b"kept"
    finally:
        await client.aclose()
    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="NOTES", subjects=["notes.>"])
        await js.publish("notes.one", b"kept")
        assert (await js.get_last_msg("NOTES", "notes.one")).data == b"kept"
    finally:
        await nc.close()


async def read_everything(stack: EmbeddedStack) -> None:
    conn = await asyncpg.connect(stack.database_url)
    try:
        assert await conn.fetchval("SELECT body FROM notes WHERE id = 1") == "kept"
    finally:
        await conn.close()
    client = aioredis.Redis.from_url(stack.redis_url)
    try:
        assert await client.get("note") == b"kept"
    finally:
        await client.aclose()
    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()
        assert (await js.stream_info("NOTES")).state.messages == 1
        assert (await js.get_last_msg("NOTES", "notes.one")).data == b"kept"
    finally:
        await nc.close()


async def test_data_survives_a_restart(data_dir: Path) -> None:
    async with EmbeddedStack(data_dir) as stack:
        assert re.fullmatch(r"postgresql://orch@127\.0\.0\.1:\d+/orch", stack.database_url)
        assert re.fullmatch(r"redis://127\.0\.0\.1:\d+/0", stack.redis_url)
        assert re.fullmatch(r"nats://127\.0\.0\.1:\d+", stack.nats_url)
        await write_everything(stack)
        pids = stack.pids()
        assert set(pids) == {"postgres", "redis", "nats"}
        first_run = [pid for group in pids.values() for pid in group]
        assert len(pids["postgres"]) > 1 and all(alive(pid) for pid in first_run)
    assert await wait_until_dead(first_run) == []

    # A crash would leave postmaster.pid behind; a dead pid in it must not block the start.
    (data_dir / "postgres" / "pgdata" / "postmaster.pid").write_text(f"{dead_pid()}\n")
    async with EmbeddedStack(data_dir) as stack:
        await read_everything(stack)


async def test_busy_port_is_refused_clearly(data_dir: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        with pytest.raises(StackError, match=rf"^port {busy} on 127\.0\.0\.1 is already in use \("):
            await RedisServer(data_dir / "redis", busy).start()
        stack = EmbeddedStack(data_dir, postgres_port=busy)
        with pytest.raises(StackError, match=rf"port {busy} on 127\.0\.0\.1 is already in use"):
            await stack.start()
        assert stack.pids() == {}  # the servers that did start were stopped again


async def test_a_picked_port_taken_before_the_server_binds_it_is_picked_again(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.common.stack import _server

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        picks = iter([taken])
        # The first pick is "free" when asked, and gone by the time the server binds it.
        monkeypatch.setattr(
            _server, "claim_port", lambda port, what: next(picks, None) or pick_free_port()
        )
        server = RedisServer(data_dir / "redis")
        await server.start()
        try:
            assert server.port != taken and await tcp_accepts(server.port)
        finally:
            await server.stop()


async def test_a_restarted_server_comes_back_on_its_port(data_dir: Path) -> None:
    # Clients (the services' pools, the workers) hold the address they were given.
    server = RedisServer(data_dir / "redis")
    await server.start()
    first = server.port
    await server.stop()
    assert not await tcp_accepts(first)
    await server.start()
    try:
        assert server.port == first and await tcp_accepts(first)
    finally:
        await server.stop()


async def test_external_urls_start_nothing(data_dir: Path) -> None:
    db, bus, cache = "postgresql://u@db.example/x", "nats://bus.example", "redis://cache.example/0"
    async with EmbeddedStack(
        data_dir / "unused", database_url=db, nats_url=bus, redis_url=cache
    ) as stack:
        assert (stack.database_url, stack.nats_url, stack.redis_url) == (db, bus, cache)
        assert stack.pids() == {}
    assert not (data_dir / "unused").exists()


async def test_a_live_postmaster_is_not_stolen(data_dir: Path) -> None:
    server = PostgresServer(data_dir / "pg")
    await server.start()
    try:
        with pytest.raises(StackError, match="already running"):
            await PostgresServer(data_dir / "pg").start()
    finally:
        await server.stop()


async def test_a_reused_pid_of_another_postmaster_is_not_mistaken_for_ours(data_dir: Path) -> None:
    """After a crash the pid in postmaster.pid may now belong to an unrelated postgres."""
    ours = PostgresServer(data_dir / "ours")
    await ours.start()
    await ours.stop()
    other = PostgresServer(data_dir / "other")
    await other.start()
    try:
        (ours.pgdata / "postmaster.pid").write_text(f"{other.pids[0]}\n")
        await ours.start()
        assert ours.running
        await ours.stop()
    finally:
        await other.stop()


def listener(sup: Supervisor, name: str) -> int:
    port = pick_free_port()

    async def ready() -> bool:
        return await tcp_accepts(port)

    sup.add(name, [sys.executable, "-c", LISTENER, str(port)], {"LC_ALL": "C"}, ready)
    return port


async def test_supervisor_restarts_a_killed_child_and_stops_cleanly() -> None:
    out = io.StringIO()
    sup = Supervisor(backoff=0.1, grace=5.0, output=out)
    listener(sup, "alpha")
    beta_port = listener(sup, "beta")
    await sup.start()
    seen: list[int] = []
    try:
        pids = sup.pids()
        seen += pids["alpha"] + pids["beta"]
        old = pids["beta"][0]
        os.kill(old, signal.SIGKILL)
        for _ in range(100):
            new = sup.pids()["beta"]
            if new and new[0] != old and await tcp_accepts(beta_port):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("beta was not restarted")
        seen += new
        assert sup.pids()["alpha"] == pids["alpha"]  # the other child was left alone
    finally:
        await sup.stop()
    assert await wait_until_dead(seen, within=5.0) == []
    text = out.getvalue()
    assert re.search(r"^alpha \| listening on \d+$", text, re.M)
    assert len(re.findall(r"^beta \| listening on", text, re.M)) == 2


async def test_supervisor_gives_up_on_a_crash_loop() -> None:
    sup = Supervisor(backoff=0.01, max_restarts=2, output=io.StringIO())
    port = listener(sup, "steady")
    code = "import time; print('up', flush=True); time.sleep(0.3); raise SystemExit(3)"

    async def ready() -> bool:
        return True

    sup.add("flaky", [sys.executable, "-c", code], None, ready)
    await sup.start()
    with pytest.raises(StackError, match=r"flaky exited \(code 3\) after 2 restarts"):
        await asyncio.wait_for(sup.wait(), 30)
    assert sup.pids() == {"steady": [], "flaky": []}
    assert not await tcp_accepts(port)


async def test_supervisor_readiness_timeout_shows_the_output() -> None:
    sup = Supervisor(ready_timeout=1.0, grace=2.0, output=io.StringIO())

    async def never() -> bool:
        return False

    code = "import time; print('stuck on purpose', flush=True); time.sleep(60)"
    sup.add("stuck", [sys.executable, "-c", code], None, never)
    with pytest.raises(StackError, match=r"(?s)stuck was not ready within 1 s.*stuck on purpose"):
        await sup.start()
    assert sup.pids() == {"stuck": []}


# Run by the next test in its own interpreter, which the test then SIGKILLs.
ORPHAN_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from orchestrator.common.stack import EmbeddedStack, Supervisor

    async def main() -> None:
        stack = EmbeddedStack(Path(sys.argv[1]))
        await stack.start()
        sup = Supervisor()

        async def ready() -> bool:
            return True

        sup.add("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"], None, ready)
        await sup.start()
        pids = [p for group in {**stack.pids(), **sup.pids()}.values() for p in group]
        print(json.dumps(pids), flush=True)
        await asyncio.sleep(600)

    asyncio.run(main())
    """
)


async def test_nothing_outlives_a_killed_parent(data_dir: Path) -> None:
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ORPHAN_SCRIPT, str(data_dir), stdout=asyncio.subprocess.PIPE
    )
    assert parent.stdout is not None
    try:
        pids = json.loads(await asyncio.wait_for(parent.stdout.readline(), 60))
    finally:
        parent.kill()
        await parent.wait()
    assert len(pids) >= 4
    assert await wait_until_dead(pids) == []
    async with EmbeddedStack(data_dir) as stack:  # and the data dir is usable again
        assert stack.pids()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands PostgreSQL to another user")
async def test_postgres_runs_from_private_folders_as_root() -> None:
    """A checkout or data dir under a 0700 folder: binaries are copied to a shared cache and
    the cluster is kept under /var/lib/orch, so the postgres user can reach both."""
    private = Path(tempfile.mkdtemp(prefix="orch-private-"))  # 0700, owned by root
    cleanup: list[Path] = []
    try:
        install = private / "site" / "pkg" / "pginstall" / "bin"
        install.mkdir(parents=True)
        (install / "postgres").write_text("#!/bin/sh\n")
        (private / "site" / "pkg.libs").mkdir()
        (private / "site" / "pkg.libs" / "libpq.so").write_text("lib")
        uid, gid, _ = unprivileged_account()
        copied = reachable_install(install, uid, gid)
        cache = copied.parents[2]
        cleanup.append(cache)
        # The layout the binaries' relative RPATH expects survives the copy.
        assert (copied / "../../../pkg.libs/libpq.so").resolve().read_text() == "lib"
        assert copied != install and (copied / "postgres").read_text() == "#!/bin/sh\n"
        assert blocking_folder(copied / "postgres", uid, gid) is None

        async with EmbeddedStack(private / "data") as stack:
            conn = await asyncpg.connect(stack.database_url, ssl=False)
            assert await conn.fetchval("SELECT 1") == 1
            await conn.close()
        relocated = reachable_pgdata(private / "data" / "postgres" / "pgdata", uid, gid)
        cleanup.append(relocated.parent)
        assert (relocated / "PG_VERSION").exists()
    finally:
        for folder in [*cleanup, private]:
            shutil.rmtree(folder, ignore_errors=True)
