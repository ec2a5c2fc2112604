"""`make bench` / `orch bench`: starts a private mesh, measures it, prints the figures."""

from __future__ import annotations

import asyncio
import io
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import grpc

from orchestrator.api.session.v1 import session_pb2 as pb
from orchestrator.api.session.v1 import session_pb2_grpc
from orchestrator.bench import dag
from orchestrator.bench.agents import bench_routing
from orchestrator.bench.contexts import bench_updates
from orchestrator.bench.dag import PREFETCH as DAG_PREFETCH
from orchestrator.bench.dag import bench_dag, bench_scale_out
from orchestrator.bench.dashboard import bench_dashboard
from orchestrator.bench.echo import METHOD
from orchestrator.bench.floor import bench_floor
from orchestrator.bench.load import LoadResult, closed_loop
from orchestrator.bench.memory import table
from orchestrator.bench.replicas import add_replicated_mesh, by_service, replicated_environment
from orchestrator.bench.tasks import bench_graph
from orchestrator.cli.up import add_mesh, mesh_environment
from orchestrator.common.settings import Settings
from orchestrator.common.stack import EmbeddedStack, Supervisor, pick_free_port

IN_FLIGHT = 64
CALLS = 4000
ROUNDS = 3
# Replicas of every service in the scale-out section.
REPLICAS = 2


async def _echo_load(address: str) -> LoadResult:
    async with grpc.aio.insecure_channel(address) as channel:
        echo: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(METHOD)
        payload = b"x" * 200
        await echo(payload)
        return await closed_loop(lambda: echo(payload), CALLS * 2, IN_FLIGHT)


async def _session_load(address: str) -> LoadResult:
    """One unit = CreateSession then StartSession: two RPCs, two commits, two events."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = session_pb2_grpc.SessionServiceStub(channel)

        async def create_and_start() -> None:
            created = await stub.CreateSession(
                pb.CreateSessionRequest(title="IND-BENCH", initial_prompt="bench", tags=["bench"])
            )
            await stub.StartSession(pb.StartSessionRequest(session_id=created.session.id))

        return await closed_loop(create_and_start, CALLS, IN_FLIGHT)


def _print_memory(label: str, groups: dict[str, list[int]]) -> dict[str, float]:
    mb = table(groups)
    cells = "  ".join(f"{name} {value:.0f}" for name, value in mb.items())
    print(f"  PSS MB {label:<12} {cells}  | total {sum(mb.values()):.0f}", flush=True)
    return mb


def _private_data_dir() -> Path:
    data_dir = Path(tempfile.mkdtemp(prefix="orch-bench-"))
    # The embedded PostgreSQL may run as an unprivileged user that must enter this folder.
    data_dir.chmod(0o755)
    return data_dir


SECTIONS = ("dag", "dashboard", "sessions", "services")


async def run(sections: Sequence[str] = SECTIONS) -> None:
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown bench sections {sorted(unknown)}; choose from {SECTIONS}")
    data_dir = _private_data_dir()
    settings = Settings(data_dir=data_dir, gateway_port=pick_free_port())
    try:
        async with EmbeddedStack(data_dir) as stack:
            env = mesh_environment(settings, stack)
            # Agents queue as many assignments as they have slots (see the DAG section).
            env["ORCH_AGENT_PREFETCH"] = str(DAG_PREFETCH)
            # A private mesh on loopback, gone when the benchmark ends: its gateway checks no
            # API keys (the dashboard section measures the dashboard, not the key check).
            env["ORCH_GATEWAY_AUTH"] = "off"
            echo_addr = f"127.0.0.1:{pick_free_port()}"

            def echo(supervisor: Supervisor) -> None:
                supervisor.add(
                    "echo",
                    [sys.executable, "-m", "orchestrator.bench.echo", echo_addr],
                    None,
                    lambda: _echo_ready(echo_addr),
                )

            def groups_of(supervisor: Supervisor) -> Callable[[], dict[str, list[int]]]:
                def groups() -> dict[str, list[int]]:
                    mesh = {k: v for k, v in supervisor.pids().items() if k != "echo"}
                    return {**stack.pids(), **by_service(mesh)}

                return groups

            if "dag" in sections:
                # The DAG runs first, on an empty mesh: the other sections leave thousands of
                # sessions and agents behind that its workers would otherwise be handed.
                print("\ntask DAG: orchestration throughput (target >= 1,500 tasks/s)")
                single = Supervisor(output=io.StringIO())
                add_mesh(single, settings, env)
                echo(single)
                async with single:
                    lines, rates = await bench_dag(
                        env, echo_addr, lambda: single.pids().get("task", []), groups_of(single)
                    )
                    for line in lines:
                        print(f"  {line}", flush=True)
                print(
                    f"\nscale-out: the same DAG, {REPLICAS} replicas of every service and of "
                    "the gateway on the same PostgreSQL, NATS and Redis"
                )
                spread = replicated_environment(env, REPLICAS)
                replicated = Supervisor(output=io.StringIO())
                add_replicated_mesh(replicated, settings, spread, REPLICAS)
                async with replicated:

                    def task_pids() -> list[int]:
                        return by_service(replicated.pids()).get("task", [])

                    scaled = await bench_scale_out(
                        spread, REPLICAS, task_pids, groups_of(replicated), rates
                    )
                    for line in scaled:
                        print(f"  {line}", flush=True)
                await _floor(stack, rates)
            rest = [s for s in sections if s != "dag"]
            if not rest:
                return
            supervisor = Supervisor(output=io.StringIO())
            add_mesh(supervisor, settings, env)
            echo(supervisor)
            async with supervisor:
                if "dashboard" in sections:
                    print("\ndashboard: 5,000 sessions, a 1,000-task graph, live updates")
                    gateway = f"http://{settings.gateway_host}:{settings.gateway_port}"
                    for line in await bench_dashboard(env, gateway):
                        print(f"  {line}", flush=True)
                if "sessions" in sections:
                    await _measure(stack, supervisor, env["ORCH_SESSION_ADDR"], echo_addr)
                if "services" in sections:
                    await _measure_services(env)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def _floor(stack: EmbeddedStack, rates: list[float]) -> None:
    """The same DAG as traffic alone (see `floor`), against the mesh's runs (`rates`)."""
    print(
        "\nfloor: the same DAG's mandated traffic alone, no orchestration logic "
        "(orchestrator.bench.floor)"
    )
    lines, floor = await bench_floor(
        stack.database_url,
        stack.nats_url,
        stack.pids,
        (dag.CHAINS, dag.CHAIN_LENGTH),
        dag.WORKERS,
        dag.SLOTS_PER_WORKER,
        dag.PREFETCH,
        dag.RUNS,
    )
    for line in lines:
        print(f"  {line}", flush=True)
    best, target = max(floor), dag.TARGET_TASKS_PER_SECOND
    print(
        f"  the mesh's best {max(rates):.0f} tasks/s is {max(rates) / best:.0%} of the floor's "
        f"best {best:.0f}; the target {target:,} is {target / best:.1f}x the floor",
        flush=True,
    )


async def _echo_ready(address: str) -> bool:
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            echo: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(METHOD)
            await echo(b"", timeout=1)
        return True
    except grpc.aio.AioRpcError:
        return False


async def _measure(
    stack: EmbeddedStack, supervisor: Supervisor, session_addr: str, echo_addr: str
) -> None:
    def groups() -> dict[str, list[int]]:
        mesh = {k: v for k, v in supervisor.pids().items() if k != "echo"}
        return {**stack.pids(), **mesh}

    print(f"\nsession service: Create+Start, {IN_FLIGHT} calls in flight, {CALLS} per round")
    idle = _print_memory("idle", groups())
    previous = idle
    for round_no in range(1, ROUNDS + 1):
        echo = await _echo_load(echo_addr)
        sessions = await _session_load(session_addr)
        # Each unit is two RPCs; compare RPC rates.
        rpc_rate = sessions.per_second * 2
        print(f"round {round_no}")
        print("  " + echo.line("grpc.aio echo (baseline)"))
        print("  " + sessions.line("session Create+Start (unit)"))
        print(
            f"  session RPCs/s {rpc_rate:.0f} = {rpc_rate / echo.per_second:.0%} of echo "
            f"(target >= 40%), unit p99 {sessions.percentile(99):.1f} ms (target < 100 ms)"
        )
        current = _print_memory(f"after run {round_no}", groups())
        growth = {k: current[k] / previous[k] - 1 for k in current if previous.get(k)}
        worst = max(growth, key=lambda k: growth[k])
        # The first round warms caches and fills PostgreSQL's buffer pool: growth that counts
        # as a leak is growth between repeated runs.
        label = "warm-up, since idle" if round_no == 1 else "since the previous run"
        target = "" if round_no == 1 else " (target <= +20%)"
        print(f"  largest growth {label}: {worst} {growth[worst]:+.0%}{target}")
        previous = current
    print(f"  idle total {sum(idle.values()):.0f} MB (target < 700 MB)")


async def _measure_services(env: dict[str, str]) -> None:
    sections: list[tuple[str, Callable[[str], Awaitable[list[str]]], str]] = [
        ("agent service: RouteTask among 10,000 agents (target p99 < 20 ms)",
         bench_routing, "ORCH_AGENT_ADDR"),
        ("task service: GetGraph with critical path, 10,000 tasks (target < 1 s)",
         bench_graph, "ORCH_TASK_ADDR"),
        ("context service: UpdateContext throughput", bench_updates, "ORCH_CONTEXT_ADDR"),
    ]  # fmt: skip
    for title, measure, address in sections:
        print(f"\n{title}", flush=True)
        for line in await measure(env[address]):
            print(f"  {line}", flush=True)


def main(sections: Sequence[str] = ()) -> None:
    asyncio.run(run(tuple(sections) or SECTIONS))


if __name__ == "__main__":
    main(sys.argv[1:])
