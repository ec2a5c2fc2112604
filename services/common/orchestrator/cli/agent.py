"""`orch agent`: run an agent worker on this machine, or list the registered agents."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.common.settings import Settings, SettingsError, load_client_settings

if TYPE_CHECKING:
    from orchestrator.api.agent.v1 import agent_pb2
    from orchestrator.worker import Worker
    from orchestrator.worker.config import WorkerConfig
    from orchestrator.worker.executors import Executor
    from orchestrator.worker.executors.opencode import OpenCodeOptions

app = typer.Typer(
    help="Agent workers: run one here, list the registered ones.", no_args_is_help=True
)

# After the drain's grace period: how long shutting down may take before it is cut short.
STOP_SLACK_SECONDS = 15.0

# noop does nothing and succeeds: it measures the orchestration alone (benchmarks).
EXECUTORS = ("shell", "opencode", "noop")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"orch agent: {message}", err=True)
    return typer.Exit(1)


@app.command()
def run(
    name: Annotated[str, typer.Option(help="Agent name, AGENT-[A-Z0-9-]+ (e.g. AGENT-IMPL-01).")],
    agent_type: Annotated[str, typer.Option("--type", help="Agent type.")] = "implementer",
    capabilities: Annotated[
        str, typer.Option(help="Comma-separated capabilities.")
    ] = "code_generation",
    executor: Annotated[
        str, typer.Option(help="What runs the tasks: shell, opencode, or noop (benchmarks).")
    ] = "shell",
    command: Annotated[
        str | None, typer.Option(help="Shell command for tasks without input.command.")
    ] = None,
    max_tasks: Annotated[int, typer.Option(help="Tasks run at the same time.")] = 1,
    workspace: Annotated[
        Path | None, typer.Option(help="Working folder (default: data dir/workspaces/<name>).")
    ] = None,
    task_timeout: Annotated[float, typer.Option(help="Seconds before a task is killed.")] = 600.0,
    opencode_url: Annotated[
        str | None,
        typer.Option(help="A running `opencode serve` (default: the worker starts its own)."),
    ] = None,
    opencode_bin: Annotated[
        str | None,
        typer.Option(
            envvar="ORCH_OPENCODE_BIN",
            help="OpenCode binary for the worker's own server (default: the project's install).",
        ),
    ] = None,
    opencode_config: Annotated[
        Path | None, typer.Option(help="opencode.json for the worker's own server.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="provider/model for OpenCode's prompts.")
    ] = None,
) -> None:
    """Register as an agent and run the tasks assigned to it until SIGINT/SIGTERM."""
    from orchestrator.common.logs import configure_logging
    from orchestrator.common.telemetry import configure_tracing, shutdown_tracing
    from orchestrator.worker.config import (
        WorkerConfig,
        WorkerConfigError,
        parse_agent_type,
        parse_capabilities,
    )
    from orchestrator.worker.executors import ShellExecutor
    from orchestrator.worker.executors.noop import NoopExecutor
    from orchestrator.worker.executors.opencode import OpenCodeOptions

    if executor not in EXECUTORS:
        supported = ", ".join(EXECUTORS)
        raise _fail(f"executor {executor!r} is not supported yet; use one of: {supported}")
    try:
        settings = load_client_settings()
        config = WorkerConfig(
            name=name,
            agent_type=parse_agent_type(agent_type),
            capabilities=parse_capabilities(capabilities),
            max_tasks=max_tasks,
            workspace=(workspace or settings.data_dir / "workspaces" / name).resolve(),
            metadata={"executor": executor},
        )
    except (SettingsError, WorkerConfigError) as exc:
        raise _fail(str(exc)) from exc
    if not settings.nats_url:
        raise _fail(
            "no mesh found: start one with `orch up` (or `make run`) in this folder, or set "
            "ORCH_NATS_URL, ORCH_AGENT_ADDR and ORCH_TASK_ADDR"
        )
    if model is not None and "/" not in model.strip("/"):
        raise _fail(f"model {model!r} must be provider/model (e.g. anthropic/claude-sonnet-4)")
    configure_logging(f"worker-{name.lower()}", settings.log_level, settings.log_json)
    configure_tracing(
        f"worker-{name.lower()}", settings.otel_exporter, settings.otel_exporter_endpoint
    )
    try:
        if executor == "opencode":
            options = OpenCodeOptions(
                url=opencode_url,
                binary=opencode_bin,
                model=model,
                config_file=opencode_config.resolve() if opencode_config else None,
                timeout_seconds=task_timeout,
            )
            state_dir = settings.data_dir.resolve() / "opencode" / name.lower()
            asyncio.run(_serve_on_opencode(settings, config, options, state_dir))
            return
        runs: Executor = (
            NoopExecutor() if executor == "noop" else ShellExecutor(command, task_timeout)
        )
        # Not uvloop, as the services use: its subprocesses fork, and a fork beside gRPC's busy
        # threads may crash before the command runs (asyncio's spawn does not fork).
        asyncio.run(_serve(settings, config, runs))
    except Exception as exc:  # one clear line, not a traceback, for whatever stopped the worker
        raise _fail(_describe(exc)) from exc
    finally:
        shutdown_tracing()  # the spans still buffered go out


async def _serve_on_opencode(
    settings: Settings, config: WorkerConfig, options: OpenCodeOptions, state_dir: Path
) -> None:
    from orchestrator.api.agent.v1 import agent_pb2
    from orchestrator.common.redaction import redact
    from orchestrator.worker.executors.opencode import opencode_executor

    async with opencode_executor(options, state_dir) as executor:
        registered = dataclasses.replace(
            config,
            executor_kind=agent_pb2.EXECUTOR_KIND_OPENCODE,
            # A URL may carry a password (http://user:pw@host): agents are listed to anyone.
            executor_endpoint=redact(executor.client.base_url),
        )
        await _serve(settings, registered, executor)


async def _serve(settings: Settings, config: WorkerConfig, executor: Executor) -> None:
    from orchestrator.common.runtime import wait_for_shutdown_signal
    from orchestrator.worker import Worker

    worker = Worker(settings, config, executor)
    running = asyncio.create_task(worker.run())
    signalled = asyncio.create_task(wait_for_shutdown_signal())
    await asyncio.wait({running, signalled}, return_when=asyncio.FIRST_COMPLETED)
    if not running.done():
        if worker.ready.is_set():
            await _stop_within(worker, running, config.grace_seconds + STOP_SLACK_SECONDS)
        else:  # still connecting (NATS retries forever): nothing runs yet that could drain
            running.cancel()
    signalled.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await signalled
    # Whatever is left (a client stuck on a mesh that is gone) does not hold the exit up.
    await asyncio.wait({running}, timeout=STOP_SLACK_SECONDS)
    if not running.done():
        running.cancel()
        await asyncio.wait({running}, timeout=STOP_SLACK_SECONDS)


async def _stop_within(worker: Worker, running: asyncio.Task[None], seconds: float) -> None:
    """Drains the worker; a second signal, or a drain that outlasts `seconds` (the mesh is
    gone, say), cuts it short."""
    from orchestrator.common.runtime import wait_for_shutdown_signal

    stopping = asyncio.create_task(worker.stop())
    again = asyncio.create_task(wait_for_shutdown_signal())
    done, _ = await asyncio.wait(
        {stopping, again}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
    )
    if stopping not in done:
        typer.echo("orch agent: not drained in time; stopping now", err=True)
        running.cancel()
    for waiter in (stopping, again):
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await waiter


@app.command("list")
def list_agents() -> None:
    """The registered agents (every status except DEREGISTERED)."""
    try:
        agents = asyncio.run(_list(load_client_settings()))
    except (SettingsError, OSError) as exc:
        raise _fail(str(exc)) from exc
    except Exception as exc:
        raise _fail(_describe(exc)) from exc
    from rich.console import Console
    from rich.table import Table

    from orchestrator.api.agent.v1 import agent_pb2

    table = Table("NAME", "ID", "TYPE", "STATUS", "LOAD", "TIER")
    for a in agents:
        table.add_row(
            a.name,
            a.id,
            agent_pb2.AgentType.Name(a.agent_type).removeprefix("AGENT_TYPE_").lower(),
            agent_pb2.AgentStatus.Name(a.status).removeprefix("AGENT_STATUS_"),
            f"{a.load.current_tasks}/{a.max_concurrent_tasks}",
            agent_pb2.PerformanceTier.Name(a.performance.tier).removeprefix("PERFORMANCE_TIER_"),
        )
    Console().print(table)


async def _list(settings: Settings) -> list[agent_pb2.Agent]:
    from orchestrator.api.agent.v1 import agent_pb2, agent_pb2_grpc
    from orchestrator.api.common.v1 import common_pb2
    from orchestrator.common.channels import open_channel

    agents: list[agent_pb2.Agent] = []
    token = ""
    async with open_channel(settings.agent_addr, settings) as channel:
        stub = agent_pb2_grpc.AgentServiceStub(channel)
        while True:
            page = common_pb2.PageRequest(page_size=100, page_token=token)
            reply = await stub.ListAgents(agent_pb2.ListAgentsRequest(page=page), timeout=10)
            agents += reply.agents
            token = reply.page.next_page_token
            if not token:
                return agents


def _describe(exc: BaseException) -> str:
    import grpc

    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name.lower()}: {exc.details()}"
    return str(exc) or type(exc).__name__
