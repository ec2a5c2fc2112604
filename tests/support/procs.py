"""The mesh as separate OS processes, for tests that kill or restart parts of it.

`ProcessMesh` starts a private embedded stack (its own data dir and ports), then the four
services and the gateway as `python -m orchestrator.<svc>.main` children of the project's own
`Supervisor`, exactly as `orch up` does (which also restarts a child that dies). Workers are
`orch agent run` subprocesses. So a `kill -9` here is a real one, and nothing is shared with the
stack the other tests use.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import nats
import psutil
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from orchestrator.api.events.v1 import events_pb2
from orchestrator.cli.up import add_mesh, bootstrap_key, mesh_environment
from orchestrator.common.settings import Settings
from orchestrator.common.stack import EmbeddedStack, Supervisor, pick_free_port
from orchestrator.worker.config import agent_id_for
from tests.support.mesh import wait_until

ORCH = [sys.executable, "-c", "from orchestrator.cli.main import main; main()"]

# Short clocks, so that a dead worker's lease runs out, and its agent goes offline, in seconds:
# the agent is offline (1 s TTL, swept every 0.2 s) well before its tasks' 4 s leases run out, so
# they are never routed back to it.
FAST_KNOBS = {
    "ORCH_WORKER_LEASE_SECONDS": "4",
    "ORCH_AGENT_HEARTBEAT_TTL_SECONDS": "1",
    "ORCH_AGENT_SWEEP_INTERVAL_SECONDS": "0.2",
    "ORCH_SWEEP_INTERVAL_SECONDS": "0.2",
    "ORCH_SHUTDOWN_GRACE_SECONDS": "1",
    "ORCH_LOG_JSON": "false",
}

# Every capability the decomposition may ask of a step of the prompts the tests use.
CAPABILITIES = "code_generation,testing,test_generation,documentation"

TERMINAL_SESSION = {"completed", "partially_completed", "failed", "stopped", "cancelled", "timeout"}


def clean_environment() -> dict[str, str]:
    """Ours without any ORCH_* setting that would point a child at another mesh."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}


@dataclass
class WorkerProcess:
    """One `orch agent run` child."""

    name: str
    workspace: Path
    proc: asyncio.subprocess.Process
    log: Path

    @property
    def agent_id(self) -> str:
        return agent_id_for(self.name)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def runs(self) -> list[int]:
        """Live processes of task runs started by this worker (in its workspace)."""
        found = []
        for proc in psutil.process_iter(["pid", "cwd", "status"]):
            if proc.info["cwd"] == str(self.workspace) and proc.info["status"] != "zombie":
                found.append(proc.info["pid"])
        return found

    def lines(self, name: str = "runs.txt") -> list[str]:
        path = self.workspace / name
        return path.read_text().splitlines() if path.exists() else []

    async def kill(self) -> None:
        """kill -9 of the worker process (its task runs are left to whatever that does)."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        for pid in self.runs():  # a run left by a killed worker
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()


@dataclass
class ProcessMesh:
    root: Path
    knobs: Mapping[str, str] = field(default_factory=lambda: dict(FAST_KNOBS))
    stack: EmbeddedStack | None = None
    supervisor: Supervisor | None = None
    env: dict[str, str] = field(default_factory=dict)
    gateway: str = ""
    # The admin key `orch up` would make (the gateway checks keys, as by default).
    api_key: str | None = None
    workers: list[WorkerProcess] = field(default_factory=list)
    _log: IO[str] | None = None

    async def start(self) -> None:
        self.stack = EmbeddedStack(self.root / "data", nats_port=pick_free_port())
        await self.stack.start()
        settings = Settings(data_dir=self.root / "data", gateway_port=pick_free_port())
        self.env = {**clean_environment(), **mesh_environment(settings, self.stack), **self.knobs}
        self._log = (self.root / "mesh.log").open("a", buffering=1)
        self.supervisor = Supervisor(grace=2.0, backoff=0.2, output=self._log)
        add_mesh(self.supervisor, settings, self.env)
        self.api_key = await bootstrap_key(settings, self.stack.database_url)
        await self.supervisor.start()
        self.gateway = f"http://{settings.gateway_host}:{settings.gateway_port}"

    @property
    def headers(self) -> dict[str, str]:
        """What a client of this mesh's gateway sends: its admin key."""
        return {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    async def stop_workers(self) -> None:
        """Stops every worker started so far (so none takes the next test's tasks)."""
        workers, self.workers = self.workers, []
        for worker in workers:
            await worker.stop()

    async def stop(self) -> None:
        await self.stop_workers()
        if self.supervisor is not None:
            await self.supervisor.stop()
        if self.stack is not None:
            await self.stack.stop()
        if self._log is not None:
            self._log.close()

    @property
    def nats_url(self) -> str:
        assert self.stack is not None
        return self.stack.nats_url

    @property
    def task_addr(self) -> str:
        return self.env["ORCH_TASK_ADDR"]

    def service_pid(self, name: str) -> int:
        assert self.supervisor is not None
        return self.supervisor.pids()[name][0]

    async def kill_service(self, name: str) -> None:
        """kill -9 of one service process; the supervisor starts it again, as under `orch up`."""
        pid = self.service_pid(name)
        os.kill(pid, signal.SIGKILL)

        async def replaced() -> bool:
            assert self.supervisor is not None
            pids = self.supervisor.pids().get(name) or [pid]
            return pids[0] != pid

        await wait_until(replaced, within=30, what=f"the {name} service to be started again")

    async def restart_nats(self) -> None:
        """Stops the NATS server and starts it again on the same port and store."""
        assert self.stack is not None
        server = self.stack.servers["nats"]
        await server.stop()
        await server.start()

    async def start_worker(
        self, name: str, *, max_tasks: int = 1, lease_seconds: int | None = None
    ) -> WorkerProcess:
        worker = await start_worker(
            self.root,
            self.env,
            self.gateway,
            name,
            max_tasks=max_tasks,
            lease_seconds=lease_seconds,
            headers=self.headers,
        )
        self.workers.append(worker)
        return worker

    def log_tail(self, lines: int = 60) -> str:
        text = (self.root / "mesh.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


async def start_worker(
    root: Path,
    env: Mapping[str, str],
    gateway: str,
    name: str,
    *,
    max_tasks: int = 1,
    lease_seconds: int | None = None,
    capabilities: str = CAPABILITIES,
    headers: Mapping[str, str] | None = None,
) -> WorkerProcess:
    """An `orch agent run` child of the mesh whose addresses `env` holds, with its workspace
    and log under `root`; returned once its agent is registered and idle."""
    workspace = root / "workspaces" / name
    workspace.mkdir(parents=True)
    log = root / f"{name.lower()}.log"
    argv = [*ORCH, "agent", "run", "--name", name, "--capabilities", capabilities]
    argv += ["--max-tasks", str(max_tasks), "--workspace", str(workspace)]
    child_env = {**clean_environment(), **env, "ORCH_DATA_DIR": str(root / "worker-data")}
    if lease_seconds is not None:
        child_env["ORCH_WORKER_LEASE_SECONDS"] = str(lease_seconds)
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=child_env, stdout=out, stderr=asyncio.subprocess.STDOUT
        )
    worker = WorkerProcess(name, workspace, proc, log)

    async def idle() -> bool:
        if proc.returncode is not None:
            raise AssertionError(f"worker {name} exited:\n{log.read_text()[-2000:]}")
        async with httpx.AsyncClient(base_url=gateway, headers=headers, timeout=5) as http:
            reply = await http.get(f"/api/v1/agents/{worker.agent_id}")
        return reply.status_code == 200 and reply.json()["status"] == "idle"

    try:
        await wait_until(idle, within=30, what=f"worker {name} to be registered")
    except BaseException:
        await worker.stop()
        raise
    return worker


@contextlib.asynccontextmanager
async def process_mesh(knobs: Mapping[str, str] | None = None) -> AsyncIterator[ProcessMesh]:
    root = Path(tempfile.mkdtemp(prefix="orch-procs-"))
    # The embedded PostgreSQL runs as an unprivileged user when we are root; it must enter here.
    root.chmod(0o755)
    mesh = ProcessMesh(root, dict(knobs) if knobs is not None else dict(FAST_KNOBS))
    try:
        await mesh.start()
        yield mesh
    finally:
        await mesh.stop()
        # ORCH_TEST_KEEP_LOGS=1 keeps the services' and workers' logs for a look after a failure.
        if not os.environ.get("ORCH_TEST_KEEP_LOGS"):
            shutil.rmtree(root, ignore_errors=True)


# ---- reading what happened ------------------------------------------------------------------


@dataclass(frozen=True)
class StreamEvent:
    seq: int
    subject: str
    event: events_pb2.Event

    @property
    def type(self) -> str:
        return self.event.type

    @property
    def task_id(self) -> str:
        return self.event.task.task.id if self.event.HasField("task") else ""


async def stream_events(nats_url: str, subject: str, stream: str = "ORCH") -> list[StreamEvent]:
    """Every message of the stream on `subject`, in stream order, read by an ephemeral consumer
    (nothing is acked or changed for anyone else)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE, inactive_threshold=30
        )
        sub = await js.pull_subscribe(subject, stream=stream, config=config)
        found: list[StreamEvent] = []
        while (await sub.consumer_info()).num_pending:
            try:
                msgs = await sub.fetch(256, timeout=2)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            for msg in msgs:
                event = events_pb2.Event()
                event.ParseFromString(msg.data)
                found.append(StreamEvent(msg.metadata.sequence.stream, msg.subject, event))
        await sub.unsubscribe()
        return found
    finally:
        await nc.close()


def per_task(events: Iterable[StreamEvent]) -> dict[str, Counter[str]]:
    """How often each task event type occurs, by task id."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for e in events:
        if e.task_id:
            counts[e.task_id][e.type] += 1
    return counts


async def session_of(http: httpx.AsyncClient, session_id: str) -> dict[str, Any]:
    reply = await http.get(f"/sessions/{session_id}")
    reply.raise_for_status()
    return dict(reply.json())


async def tasks_of(http: httpx.AsyncClient, session_id: str) -> list[dict[str, Any]]:
    reply = await http.get("/tasks", params={"session_id": session_id, "page_size": 200})
    reply.raise_for_status()
    return list(reply.json()["tasks"])


async def wait_for_session(
    http: httpx.AsyncClient, session_id: str, statuses: set[str], within: float = 45.0
) -> dict[str, Any]:
    """Polls the session until its status is one of `statuses`; fails if it ends otherwise."""
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        try:
            seen.update(await session_of(http, session_id))
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 503:  # a service restarting: ask again
                return False
            raise
        if seen["status"] in TERMINAL_SESSION and seen["status"] not in statuses:
            raise AssertionError(f"session ended {seen['status']}: {seen.get('status_reason')}")
        return seen["status"] in statuses

    try:
        await wait_until(reached, within=within, what=f"session {session_id} to be {statuses}")
    except AssertionError as exc:
        tasks = [
            (t["title"], t["status"], t["status_reason"]) for t in await tasks_of(http, session_id)
        ]
        raise AssertionError(f"{exc}; it is {seen.get('status')}, its tasks: {tasks}") from None
    return seen


async def start_session(
    http: httpx.AsyncClient, title: str, prompt: str, **agent_config: str
) -> str:
    """Creates and starts a session through the gateway; returns its id."""
    body = {"title": title, "initial_prompt": prompt, "agent_config": agent_config}
    created = await http.post("/sessions", json=body)
    assert created.status_code == 201, created.text
    session_id = str(created.json()["id"])
    started = await http.post(f"/sessions/{session_id}/start")
    assert started.status_code == 200, started.text
    return session_id
