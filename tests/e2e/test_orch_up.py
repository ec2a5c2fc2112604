"""`orch up` as a user runs it: the whole mesh as processes, then Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from orchestrator.common.stack import pick_free_port

pytestmark = pytest.mark.timeout(120)

ORCH = [sys.executable, "-c", "from orchestrator.cli.main import main; main()", "up"]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="orch-up-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update(ORCH_DATA_DIR=str(data_dir), ORCH_GATEWAY_PORT=str(port), ORCH_LOG_JSON="false")
    return env


async def _read_until_up(proc: asyncio.subprocess.Process, seen: list[bytes]) -> None:
    """Collects orch up's output; returns once it says the mesh is up."""
    assert proc.stdout is not None
    while line := await proc.stdout.readline():
        seen.append(line)
        if line.startswith(b"Industrial Orchestrator is up."):
            return
    raise AssertionError(
        "orch up ended before the mesh was up:\n" + b"".join(seen).decode()[-2000:]
    )


async def test_up_serves_the_api_and_stops_everything_on_sigint(data_dir: Path) -> None:
    port = pick_free_port()
    base = f"http://127.0.0.1:{port}"
    proc = await asyncio.create_subprocess_exec(
        *ORCH,
        env=_env(data_dir, port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    seen: list[bytes] = []
    try:
        await asyncio.wait_for(_read_until_up(proc, seen), 90)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 5  # postgres, nats, valkey, session, gateway
        # The dashboard's URL carries the admin key `orch up` made, in the fragment only.
        key_file = data_dir / "admin.key"
        key = key_file.read_text().strip()
        assert key_file.stat().st_mode & 0o777 == 0o600
        # The mesh file clients read holds the servers' URLs: this user's only, too.
        assert (data_dir / "mesh.env").stat().st_mode & 0o777 == 0o600
        assert proc.stdout is not None
        dashboard = await asyncio.wait_for(proc.stdout.readline(), 5)
        seen.append(dashboard)
        assert dashboard.decode() == f"  dashboard   {base}/#key={key}\n"
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            assert (await http.get("/api/v1/sessions")).status_code == 401
            http.headers["authorization"] = f"Bearer {key}"
            body = {"title": "IND-UP", "initial_prompt": "check the mesh"}
            created = (await http.post("/api/v1/sessions", json=body)).json()
            started = await http.post(f"/api/v1/sessions/{created['id']}/start")
            assert started.json()["status"] == "running"
        proc.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(proc.communicate(), 60)
        output = b"".join(seen) + rest
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, output.decode()[-2000:]
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    assert (data_dir / "postgres").is_dir()  # data kept for the next run


async def test_a_busy_gateway_port_is_one_clear_sentence(data_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            *ORCH,
            env=_env(data_dir, port),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    message = err.decode().strip()
    assert message.startswith(f"orch up: port {port} on 127.0.0.1 is already in use")
    assert "Traceback" not in message and "\n" not in message
