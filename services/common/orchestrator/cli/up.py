"""`orch up`: the embedded servers, the services and the gateway, supervised, in the foreground."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.common.probes import grpc_probe, http_probe
from orchestrator.common.redaction import redact
from orchestrator.common.runtime import wait_for_shutdown_signal
from orchestrator.common.settings import MESH_FILE, Settings
from orchestrator.common.stack import EmbeddedStack, StackError, Supervisor, pick_free_port
from orchestrator.common.stack.net import claim_port
from orchestrator.common.tls import tls_environment

# The admin key `orch up` makes for the dashboard (mode 0600), in its data dir.
BOOTSTRAP_KEY_FILE = "admin.key"

# The gRPC services `orch up` runs, in start order: (name, module, settings field of its address).
SERVICES = [
    ("session", "orchestrator.session.main", "session_addr"),
    ("agent", "orchestrator.agent.main", "agent_addr"),
    ("task", "orchestrator.task.main", "task_addr"),
    ("context", "orchestrator.context.main", "context_addr"),
]


def mesh_environment(settings: Settings, stack: EmbeddedStack) -> dict[str, str]:
    """What every child is told: the server URLs, where each service listens, gRPC's TLS."""
    env = {
        "ORCH_DATABASE_URL": stack.database_url,
        "ORCH_NATS_URL": stack.nats_url,
        "ORCH_REDIS_URL": stack.redis_url,
        "ORCH_DATA_DIR": str(settings.data_dir),
        "ORCH_GATEWAY_HOST": settings.gateway_host,
        "ORCH_GATEWAY_PORT": str(settings.gateway_port),
        # The gateway's security, as `orch up` was told it (children get only this env).
        "ORCH_GATEWAY_AUTH": settings.gateway_auth,
        "ORCH_GATEWAY_KEY_CACHE_SECONDS": str(settings.gateway_key_cache_seconds),
        "ORCH_GATEWAY_RATE_LIMIT": str(settings.gateway_rate_limit),
        "ORCH_GATEWAY_RATE_BURST": str(settings.gateway_rate_burst),
        "ORCH_GATEWAY_CORS_ORIGINS": ",".join(settings.gateway_cors_origins),
    }
    for _, _, field in SERVICES:
        env[f"ORCH_{field.upper()}"] = f"127.0.0.1:{pick_free_port()}"
    env.update(tls_environment(settings))
    env.update(observability_environment(settings))
    return env


def observability_environment(settings: Settings) -> dict[str, str]:
    """Spans as `orch up` was told, for every child (and workers, through the mesh file); and
    where each service serves its /metrics: `ORCH_METRICS_<SERVICE>` (host:port), a free port
    each, handed to that child alone as its ORCH_METRICS_PORT, so no two collide."""
    env = {
        "ORCH_OTEL_EXPORTER": settings.otel_exporter,
        "ORCH_METRICS_HOST": settings.metrics_host,
        "ORCH_METRICS_POLL_SECONDS": str(settings.metrics_poll_seconds),
    }
    if settings.otel_exporter_endpoint:
        env["ORCH_OTEL_EXPORTER_ENDPOINT"] = settings.otel_exporter_endpoint
    for name, _, _ in SERVICES:
        env[metrics_key(name)] = f"{settings.metrics_host}:{pick_free_port()}"
    return env


def metrics_key(service: str) -> str:
    return f"ORCH_METRICS_{service.upper()}"


def own_environment(env: dict[str, str], service: str) -> dict[str, str]:
    """`env` with the service's own metrics port, when the mesh environment names one."""
    target = env.get(metrics_key(service))
    if target is None:
        return env
    return {**env, "ORCH_METRICS_PORT": target.rsplit(":", 1)[1]}


def add_mesh(supervisor: Supervisor, settings: Settings, env: dict[str, str]) -> None:
    """The four services, then the gateway, each started once the previous one is healthy."""
    for name, module, field in SERVICES:
        address = env[f"ORCH_{field.upper()}"]
        supervisor.add(
            name,
            [sys.executable, "-m", module],
            own_environment(env, name),
            grpc_probe(address, settings),
        )
    gateway = f"http://{settings.gateway_host}:{settings.gateway_port}/health"
    supervisor.add(
        "gateway", [sys.executable, "-m", "orchestrator.gateway.main"], env, http_probe(gateway)
    )


async def bootstrap_key(settings: Settings, database_url: str) -> str | None:
    """The admin key of this data dir's mesh: the one in its key file while still in force,
    else a new one written there (0600). None when the gateway checks no keys."""
    from orchestrator.gateway.security.keys import mint, parse, refusal_of
    from orchestrator.gateway.security.store import open_key_store

    if settings.gateway_auth == "off":
        return None
    path = settings.data_dir / BOOTSTRAP_KEY_FILE
    async with open_key_store(database_url) as store:
        if path.is_file():
            kept = path.read_text().strip()
            presented = parse(kept)
            if presented is not None:
                record = await store.get(presented.id)
                if refusal_of(record, presented, datetime.now(UTC)) is None:
                    return kept
        minted = mint()
        await store.create(minted, name="orch up (dashboard)", scopes=["admin"])
    _write_private(path, minted.plaintext + "\n")
    return minted.plaintext


def _write_private(path: Path, text: str) -> None:
    """Writes `text` readable by this user only, replacing the file in one step."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(partial, path)


def _print_urls(
    settings: Settings, stack: EmbeddedStack, env: dict[str, str], key: str | None
) -> None:
    base = f"http://{settings.gateway_host}:{settings.gateway_port}"
    # In the fragment, the key never reaches the server (nor its logs); the page keeps it.
    dashboard = f"{base}/#key={key}" if key else f"{base}/"
    key_file = settings.data_dir.resolve() / BOOTSTRAP_KEY_FILE
    lines = [
        "",
        "Industrial Orchestrator is up.",
        f"  dashboard   {dashboard}",
        f"  API key     {key_file} (admin; `orch keys` manages keys)"
        if key
        else "  API key     none needed (ORCH_GATEWAY_AUTH=off)",
        f"  REST API    {base}/api/v1   (docs: {base}/docs)",
        f"  WebSocket   ws://{settings.gateway_host}:{settings.gateway_port}/ws/sessions",
        *(f"  gRPC {n:<7} {env[f'ORCH_{f.upper()}']}" for n, _, f in SERVICES),
        f"  metrics     {base}/metrics (gateway), "
        + ", ".join(f"{n} {env[metrics_key(n)]}" for n, _, _ in SERVICES if metrics_key(n) in env),
        f"  PostgreSQL  {redact(stack.database_url)}",
        f"  NATS        {redact(stack.nats_url)}",
        f"  Redis       {redact(stack.redis_url)}",
        f"  data        {settings.data_dir.resolve()}",
        "Press Ctrl-C to stop.",
        "",
    ]
    print("\n".join(lines), flush=True)


async def run_mesh(settings: Settings) -> None:
    claim_port(settings.gateway_port, "the gateway")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stack = EmbeddedStack(
        settings.data_dir,
        database_url=settings.database_url,
        nats_url=settings.nats_url,
        redis_url=settings.redis_url,
    )
    async with stack:
        env = mesh_environment(settings, stack)
        key = await bootstrap_key(settings, stack.database_url)
        supervisor = Supervisor(grace=settings.shutdown_grace_seconds)
        add_mesh(supervisor, settings, env)
        mesh_file = settings.data_dir / MESH_FILE
        try:
            await supervisor.start()
            # `orch agent run` and friends find the mesh here when ORCH_* are not set. Its URLs
            # may hold passwords: readable by this user only.
            _write_private(mesh_file, "".join(f"{k}={v}\n" for k, v in sorted(env.items())))
            _print_urls(settings, stack, env, key)
            await _until_stopped(supervisor)
        finally:
            mesh_file.unlink(missing_ok=True)
            await supervisor.stop()


async def _until_stopped(supervisor: Supervisor) -> None:
    """Returns on Ctrl-C/SIGTERM; raises StackError when a child keeps dying."""
    signal_wait = asyncio.create_task(wait_for_shutdown_signal())
    crash_wait = asyncio.create_task(supervisor.wait())
    done, pending = await asyncio.wait(
        {signal_wait, crash_wait}, return_when=asyncio.FIRST_COMPLETED
    )
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, StackError):
            await task
    for task in done:
        task.result()
