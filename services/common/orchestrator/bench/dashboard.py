"""Dashboard figures (section `dashboard`), printed, never asserted.

- The initial JavaScript: the entry chunk and what index.html preloads, gzipped, beside the
  chunks loaded on demand (the session view, the task graph with React Flow).
- In headless Chromium (`dashboard/e2e/bench.mjs`, Debian's chromium through playwright-core):
  time to first render of the session monitor with 5,000 sessions (navigation start → first
  row drawn, from the first page of 500; then until every page is in) and of a session's
  1,000-task graph (navigation start → first node drawn, the layout done; and when its
  GET /graph was answered), three loads each. "Drawn" is the page's own clock, in the task
  after the frame that added the element; the driver's, which notices it later, is beside it;
  and the latency of live updates: 40 sessions queued one at a time through the REST API,
  each timed until its monitor row shows `queued`, from the request and from the service's
  `status_updated_at`.

Needs the built dashboard (`make install`) and chromium (`make chromium`); without them only
the bundle figures (or nothing) are printed, with the reason.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import shutil
import statistics
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc

from orchestrator.api.session.v1 import session_pb2, session_pb2_grpc
from orchestrator.api.task.v1 import task_pb2, task_pb2_grpc
from orchestrator.common.ids import root_task_id

SESSIONS = 5000
IN_FLIGHT = 64
LAYERS = 50
LAYER_WIDTH = 20
DASHBOARD = Path(__file__).resolve().parents[4] / "dashboard"
CHROMIUM = os.environ.get("ORCH_CHROMIUM", "/usr/bin/chromium")
_ASSET = re.compile(r'(?:src|href)="/(assets/[^"]+\.js)"')


def _gzipped_kb(path: Path) -> float:
    return len(gzip.compress(path.read_bytes(), compresslevel=9)) / 1024


def bundle_lines(dist: Path = DASHBOARD / "dist") -> list[str]:
    """Sizes of the initial JavaScript (what index.html loads) and of the on-demand chunks."""
    index = dist / "index.html"
    if not index.is_file():
        return ["bundle: dashboard/dist is missing (run `make install`)"]
    initial = sorted(set(_ASSET.findall(index.read_text())))
    initial_kb = sum(_gzipped_kb(dist / name) for name in initial)
    files = f"{len(initial)} file{'' if len(initial) == 1 else 's'}"
    lines = [f"initial JavaScript {initial_kb:.1f} kB gzipped, {files} (target < 300)"]
    for chunk in sorted((dist / "assets").glob("*.js")):
        if f"assets/{chunk.name}" not in initial:
            lines.append(
                f"  on demand: {chunk.name.split('-')[0]} {_gzipped_kb(chunk):.1f} kB gzipped"
            )
    return lines


async def _create_sessions(address: str, count: int) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = session_pb2_grpc.SessionServiceStub(channel)
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def create(number: int) -> None:
            async with gate:
                await stub.CreateSession(
                    session_pb2.CreateSessionRequest(
                        title=f"IND-{number} dashboard bench",
                        initial_prompt="monitor load",
                        tags=["dashboard-bench"],
                    )
                )

        await asyncio.gather(*(create(n) for n in range(count)))


async def _graph_session(session_addr: str, task_addr: str) -> str:
    """A session (never started) with a root and LAYERS x LAYER_WIDTH tasks: each depends on
    the task at its place in the layer before and on that one's neighbour."""
    async with (
        grpc.aio.insecure_channel(session_addr) as sessions_channel,
        grpc.aio.insecure_channel(task_addr) as tasks_channel,
    ):
        sessions = session_pb2_grpc.SessionServiceStub(sessions_channel)
        tasks = task_pb2_grpc.TaskServiceStub(tasks_channel)
        created = await sessions.CreateSession(
            session_pb2.CreateSessionRequest(title="IND-GRAPH 1,000 tasks", initial_prompt="graph")
        )
        session = created.session
        root = root_task_id(session.id)
        plan = [task_pb2.CreateTaskRequest(task_id=root, title=session.title, actor="bench")]
        previous: list[str] = []
        for layer in range(LAYERS):
            ids = [str(uuid.uuid4()) for _ in range(LAYER_WIDTH)]
            for place, task_id in enumerate(ids):
                before = sorted({place, (place + 1) % LAYER_WIDTH}) if previous else []
                plan.append(
                    task_pb2.CreateTaskRequest(
                        task_id=task_id,
                        parent_id=root,
                        title=f"layer {layer} task {place}",
                        depends_on=[previous[i] for i in before],
                        actor="bench",
                    )
                )
            previous = ids
        await tasks.CreateTasks(task_pb2.CreateTasksRequest(session_id=session.id, tasks=plan))
        return str(session.id)


def _spread(values: list[float]) -> str:
    return " / ".join(f"{v:.0f}" for v in values)


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _browser_lines(figures: dict[str, Any]) -> list[str]:
    monitor = [float(v) for v in figures["monitor_ms"]]
    monitor_all = [float(v) for v in figures["monitor_all_ms"]]
    graph = [float(v) for v in figures["graph_ms"]]
    answered = [float(r["answered"]) for r in figures["graph_request"] if r]
    took = [float(r["took"]) for r in figures["graph_request"] if r]
    samples = list(figures["latency"])
    from_request = [float(s["fromRequest"]) for s in samples]
    from_change = [float(s["fromChange"]) for s in samples]
    return [
        f"session monitor, {figures['monitor_rows']} sessions: first render {_spread(monitor)} ms "
        f"(three loads; median {statistics.median(monitor):.0f}; the driver saw it at "
        f"{_spread(figures['monitor_driver_ms'])}), every page loaded {_spread(monitor_all)} ms",
        f"task graph, {figures['graph_nodes']} nodes: first render {_spread(graph)} ms "
        f"(three loads; median {statistics.median(graph):.0f}; the driver saw it at "
        f"{_spread(figures['graph_driver_ms'])}); its GET /graph answered at {_spread(answered)} "
        f"ms, {_spread(took)} ms after it was sent",
        f"live update to the DOM, {len(samples)} changes: from the service's change "
        f"p50 {_pct(from_change, 50):.0f} ms, p95 {_pct(from_change, 95):.0f} ms (target < 250); "
        f"from the REST request p50 {_pct(from_request, 50):.0f} ms, "
        f"p95 {_pct(from_request, 95):.0f} ms, max {max(from_request):.0f} ms",
    ]


def _cannot_browse() -> str | None:
    if not (DASHBOARD / "dist" / "index.html").is_file():
        return "the dashboard is not built"
    if not Path(CHROMIUM).is_file() or shutil.which("node") is None:
        return f"browser figures skipped: needs node and {CHROMIUM} (`make chromium`)"
    return None


async def bench_dashboard(env: Mapping[str, str], gateway: str) -> list[str]:
    """The section's lines; `env` holds the mesh's addresses, `gateway` its base URL."""
    lines = bundle_lines()
    reason = _cannot_browse()
    if reason is not None:
        return [*lines, reason]
    await _create_sessions(env["ORCH_SESSION_ADDR"], SESSIONS)
    graph_session = await _graph_session(env["ORCH_SESSION_ADDR"], env["ORCH_TASK_ADDR"])
    proc = await asyncio.create_subprocess_exec(
        "node",
        "e2e/bench.mjs",
        cwd=DASHBOARD,
        env={
            **os.environ,
            "ORCH_BENCH_URL": gateway,
            "ORCH_BENCH_GRAPH_SESSION": graph_session,
            "ORCH_CHROMIUM": CHROMIUM,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 900)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
    text = out.decode(errors="replace").strip()
    if proc.returncode != 0 or not text:
        return [*lines, f"browser figures failed: {text[-2000:]}"]
    figures = json.loads(text.splitlines()[-1])
    return [*lines, *_browser_lines(figures)]
