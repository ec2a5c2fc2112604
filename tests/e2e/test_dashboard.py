"""The dashboard in real headless Chromium against a real process mesh with `orch agent run`
workers: `dashboard/e2e/run.mjs` creates a session from the UI, sees it appear on the monitor
without a reload, starts it, watches task nodes change as the workers complete them, pauses and
resumes it, approves a task, reads the timeline, checkpoints and context versions, drains an
agent, cancels, stops and retries sessions, and scans every view with axe-core (no serious or
critical violation, and no text below AAA contrast). The gateway checks API keys: the page first
asks for one (a wrong one is refused), and the reconnect run takes it from the URL's fragment.
Screenshots land in tests/artifacts/dashboard/.

The gateway serves the build in dashboard/dist (`make install` makes it); chromium is Debian's
(`make test` installs it), driven by playwright-core with no browser download.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from orchestrator.api.session.v1 import session_pb2, session_pb2_grpc
from tests.support.procs import ProcessMesh, process_mesh

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "dashboard"
ARTIFACTS = ROOT / "tests" / "artifacts" / "dashboard"
CHROMIUM = os.environ.get("ORCH_CHROMIUM", "/usr/bin/chromium")


def _ready_to_run() -> None:
    missing = []
    if not (DASHBOARD / "dist" / "index.html").is_file():
        missing.append("dashboard/dist (run `make install`)")
    if not (DASHBOARD / "node_modules" / "playwright-core").is_dir():
        missing.append("dashboard/node_modules (run `make install`)")
    if not Path(CHROMIUM).is_file():
        missing.append(f"{CHROMIUM} (run `make chromium`)")
    if shutil.which("node") is None:
        missing.append("node")
    assert not missing, "the browser test needs: " + ", ".join(missing)


@pytest.fixture(scope="module")
async def mesh() -> AsyncIterator[ProcessMesh]:
    _ready_to_run()
    async with process_mesh() as running:
        yield running


async def test_the_dashboard_drives_a_session_end_to_end_in_a_browser(mesh: ProcessMesh) -> None:
    assert mesh.api_key, "the browser test runs against a gateway that checks API keys"
    await mesh.start_worker("AGENT-DASH-1", max_tasks=2)
    await mesh.start_worker("AGENT-DASH-2", max_tasks=1)
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    env = {
        **os.environ,
        "ORCH_E2E_URL": mesh.gateway,
        "ORCH_E2E_ARTIFACTS": str(ARTIFACTS),
        "ORCH_E2E_DRAIN_AGENT": "AGENT-DASH-2",
        "ORCH_E2E_KEY": mesh.api_key or "",
        "ORCH_CHROMIUM": CHROMIUM,
    }
    proc = await asyncio.create_subprocess_exec(
        "node",
        "e2e/run.mjs",
        cwd=DASHBOARD,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 240)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        raise AssertionError("the browser run took over 240 s:\n" + out.decode()) from None
    text = out.decode(errors="replace")
    print(text)
    assert proc.returncode == 0, f"{text}\n--- mesh log ---\n{mesh.log_tail()}"
    shots = sorted(p.name for p in ARTIFACTS.glob("*.png"))
    assert len(shots) == 14, shots  # the key screen's included: the gateway checks keys
    assert "0 serious/critical axe violations" in text
    await mesh.stop_workers()


async def test_the_page_resumes_its_live_stream_across_a_gateway_restart(mesh: ProcessMesh) -> None:
    proc = await asyncio.create_subprocess_exec(
        "node",
        "e2e/reconnect.mjs",
        cwd=DASHBOARD,
        env={
            **os.environ,
            "ORCH_E2E_URL": mesh.gateway,
            "ORCH_E2E_KEY": mesh.api_key or "",
            "ORCH_CHROMIUM": CHROMIUM,
        },
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ready = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert ready.strip() == b"READY", ready
        await mesh.kill_service("gateway")
        # Made while no gateway runs: the page can only learn of it from the resumed stream.
        title = "IND-E2E made while the gateway was down"
        async with grpc.aio.insecure_channel(mesh.env["ORCH_SESSION_ADDR"]) as channel:
            stub = session_pb2_grpc.SessionServiceStub(channel)
            await stub.CreateSession(
                session_pb2.CreateSessionRequest(title=title, initial_prompt="resume")
            )
        proc.stdin.write(title.encode() + b"\n")
        await proc.stdin.drain()
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode(errors="replace")
    print(text)
    assert proc.returncode == 0, f"{text}\n--- mesh log ---\n{mesh.log_tail()}"
    assert text.startswith("OK"), text
