"""Two replicas of every service against one PostgreSQL, NATS and Redis: a DAG runs to its end
with no task executed twice and no event lost — also when a task-service replica is killed -9
mid-run."""

from __future__ import annotations

import io
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.bench.dag import audit_run, dag_clients, run_dag
from orchestrator.bench.replicas import (
    add_replicated_mesh,
    by_service,
    replica_addresses,
    replicated_environment,
)
from orchestrator.cli.up import mesh_environment
from orchestrator.common.settings import Settings
from orchestrator.common.stack import EmbeddedStack, Supervisor, pick_free_port
from tests.support.procs import FAST_KNOBS, clean_environment

pytestmark = pytest.mark.timeout(240)

REPLICAS = 2
# 20 chains of 5: enough hand-offs between the replicas, quick on two cores.
SHAPE = (20, 5)


@pytest.fixture
async def replicated() -> AsyncIterator[tuple[dict[str, str], Supervisor]]:
    root = Path(tempfile.mkdtemp(prefix="orch-replicas-"))
    # The embedded PostgreSQL runs as an unprivileged user when we are root; it must enter here.
    root.chmod(0o755)
    stack = EmbeddedStack(root / "data", nats_port=pick_free_port())
    await stack.start()
    try:
        settings = Settings(data_dir=root / "data", gateway_port=pick_free_port())
        env = {
            **clean_environment(),
            **mesh_environment(settings, stack),
            **FAST_KNOBS,
            # Gateways that check no keys: this test talks gRPC only.
            "ORCH_GATEWAY_AUTH": "off",
        }
        env = replicated_environment(env, REPLICAS)
        supervisor = Supervisor(grace=2.0, backoff=0.2, output=io.StringIO())
        add_replicated_mesh(supervisor, settings, env, REPLICAS)
        async with supervisor:
            yield env, supervisor
    finally:
        await stack.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_two_replicas_of_every_service_run_a_dag_exactly_once(
    replicated: tuple[dict[str, str], Supervisor],
) -> None:
    env, supervisor = replicated
    services = by_service(supervisor.pids())
    for name in ("session", "agent", "task", "context", "gateway"):
        assert len(services[name]) == REPLICAS, f"{name}: {services[name]}"
    assert len(replica_addresses(env, "task_addr")) == REPLICAS
    settings = Settings()
    killed: list[int] = []

    async def kill_a_task_replica() -> None:
        pid = supervisor.pids()["task-1"][0]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    async with dag_clients(env) as (sessions, tasks, _):
        calm = await run_dag(sessions, tasks, 1, SHAPE)
        faulted = await run_dag(sessions, tasks, 2, SHAPE, started=kill_a_task_replica)

    for run in (calm, faulted):
        assert run.ended == "completed" and run.tasks == SHAPE[0] * SHAPE[1]
        audit = await audit_run(env["ORCH_NATS_URL"], settings.stream_name, run)
        assert audit.tasks == run.tasks
        assert (audit.started_twice, audit.completed_twice, audit.incomplete) == (0, 0, 0)
    # The killed replica was replaced by the supervisor; both replicas serve again.
    assert killed and supervisor.pids()["task-1"][0] != killed[0]
