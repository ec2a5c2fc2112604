"""Typed settings, read once per process from `ORCH_*` environment variables."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# A CORS origin: scheme, host, optional port; no path.
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")


class Settings(BaseSettings):
    """Everything a process of the mesh may be told. Unset URLs mean: use the embedded servers."""

    model_config = SettingsConfigDict(env_prefix="ORCH_", extra="ignore")

    database_url: str | None = None
    nats_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = Path(".orch")

    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(8080, ge=0, le=65535)
    # Request bodies above this are refused with 413.
    gateway_max_body_bytes: int = Field(1_048_576, ge=1024)

    # Gateway security (orchestrator.gateway.security). `keys`: /api and /ws need an API key
    # (`orch keys`); `off`: nothing is checked, for a gateway only trusted clients can reach.
    gateway_auth: Literal["keys", "off"] = "keys"
    # How long a gateway trusts a key it looked up: a revoked key stops working within this.
    gateway_key_cache_seconds: float = Field(5.0, ge=0, le=300)
    # Requests per second a key may make on average, and in one burst; a key's own limits
    # (`orch keys create --rate/--burst`) override them. Rate 0 = no limit.
    gateway_rate_limit: float = Field(50.0, ge=0)
    gateway_rate_burst: int = Field(200, ge=1)
    # Origins (`https://host[:port]`, comma-separated) whose pages may call the API (CORS).
    # Empty: only the gateway's own origin, which serves the dashboard.
    gateway_cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # gRPC listen addresses of the services; `orch up` fills them with free ports.
    session_addr: str = "127.0.0.1:50051"
    agent_addr: str = "127.0.0.1:50052"
    task_addr: str = "127.0.0.1:50053"
    context_addr: str = "127.0.0.1:50054"

    # TLS on the gRPC links between processes (orchestrator.common.tls): off unless a CA or a
    # certificate is given. The CA signs the mesh's certificates: clients check servers with it,
    # and servers check clients with it when client auth is `require` (mutual TLS).
    grpc_tls_ca_file: Path | None = None
    # What this process's gRPC server presents; also its client certificate by default.
    grpc_tls_cert_file: Path | None = None
    grpc_tls_key_file: Path | None = None
    grpc_tls_client_auth: str = Field("none", pattern="^(none|require)$")
    # The certificate a client presents to servers that require one, when not the one above.
    grpc_tls_client_cert_file: Path | None = None
    grpc_tls_client_key_file: Path | None = None
    # The name clients expect in servers' certificates, instead of the host they dial.
    grpc_tls_server_name: str | None = None

    # JetStream stream every event goes to.
    stream_name: str = "ORCH"
    stream_max_age_seconds: int = Field(7 * 24 * 3600, ge=60)
    stream_max_bytes: int = Field(1024 * 1024 * 1024, ge=1024 * 1024)
    # Copies of the stream on a NATS cluster (1 on a single server; 3 or 5 on a cluster).
    stream_replicas: int = Field(1, ge=1, le=5)

    db_pool_min: int = Field(1, ge=1)
    db_pool_max: int = Field(10, ge=1)
    outbox_batch_size: int = Field(256, ge=1, le=10_000)
    # An agent whose last heartbeat is older than this is marked offline.
    agent_heartbeat_ttl_seconds: int = Field(10, ge=1, le=3600)
    # Tasks assigned or running at once over all sessions (the global limit); 0 = no limit.
    max_running_tasks: int = Field(0, ge=0)
    # Assignments an agent may hold beyond its slots (max concurrent tasks): they wait in its
    # queue, so a busy worker starts its next task the moment one ends instead of waiting for
    # the scheduler. Routing still prefers agents with free slots.
    agent_prefetch: int = Field(0, ge=0, le=64)
    # How often the offline sweeper looks for agents whose heartbeat expired.
    agent_sweep_interval_seconds: float = Field(1.0, gt=0)
    # The lease a worker holds on a running task, renewed every third of it: a worker that dies
    # (kill -9, lost machine) frees its tasks for another agent within this many seconds.
    worker_lease_seconds: int = Field(30, ge=3, le=3600)
    # How often the timeout sweeper looks for overdue sessions.
    sweep_interval_seconds: float = Field(2.0, gt=0)
    shutdown_grace_seconds: float = Field(10.0, ge=0)

    log_level: str = "INFO"
    log_json: bool = True
    # Observability (README "Observability"). Spans: `none` makes none (incoming trace context
    # is still handed on), `console` prints them, `otlp` sends them over OTLP/HTTP to
    # `otel_exporter_endpoint` (a base URL such as http://collector:4318), else to the standard
    # OTEL_EXPORTER_OTLP_ENDPOINT, else to localhost:4318.
    otel_exporter: str = Field("none", pattern="^(none|console|otlp)$")
    otel_exporter_endpoint: str | None = Field(
        None,
        validation_alias=AliasChoices(
            "otel_exporter_endpoint", "ORCH_OTEL_EXPORTER_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"
        ),
    )
    # Prometheus `/metrics` of this process on its own port; 0 = none. The gateway serves
    # /metrics on its HTTP port regardless. `orch up` gives each process it starts a free port.
    metrics_port: int = Field(0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # How often gauges that need a query (outbox backlog, consumer lag, counts) are refreshed.
    metrics_poll_seconds: float = Field(5.0, gt=0)

    @field_validator("gateway_cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        """`https://a.example,http://localhost:5173` → a list; each must be an origin or `*`."""
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        for origin in value if isinstance(value, list) else ():
            if origin != "*" and not _ORIGIN.fullmatch(str(origin)):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port])")
        return value


class SettingsError(RuntimeError):
    pass


MESH_FILE = "mesh.env"


def load_client_settings() -> Settings:
    """Settings for a command that talks to a running mesh (`orch agent run`, `orch agent list`):
    what the environment says, completed by the addresses `orch up` wrote to its data dir."""
    settings = load_settings()
    mesh = settings.data_dir / MESH_FILE
    if not mesh.is_file():
        return settings
    try:
        return Settings(_env_file=mesh)
    except ValidationError as exc:
        raise SettingsError(f"{mesh} is not a valid mesh file: {exc}") from exc


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """Reads the environment once; a bad value fails fast with one readable line per field."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"ORCH_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"invalid configuration: {problems}") from exc
