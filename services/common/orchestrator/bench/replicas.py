"""A mesh with several replicas of every service, on one machine, for the scale-out benchmark.

Every replica of a service listens on a port of its own; everyone else (the other services,
the gateways, the workers, the benchmark) is given all of them as one target
(`ipv4:127.0.0.1:p1,127.0.0.1:p2`), which the mesh's channels use round robin. The replicas
share PostgreSQL, NATS and Redis and nothing else: durable consumers share their work between
them, one outbox relay per schema and one scheduler at a time lead by advisory lock, and a
session's task writes are serialised by its lock whichever replica makes them.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from orchestrator.cli.up import SERVICES
from orchestrator.common.probes import grpc_probe, http_probe
from orchestrator.common.settings import Settings
from orchestrator.common.stack import Supervisor, pick_free_port


def replicated_environment(env: Mapping[str, str], replicas: int) -> dict[str, str]:
    """`env` with each service's address replaced by the addresses of `replicas` replicas:
    what clients of the mesh are told."""
    out = dict(env)
    for _, _, field in SERVICES:
        ports = [pick_free_port() for _ in range(replicas)]
        addresses = ",".join(f"127.0.0.1:{port}" for port in ports)
        out[_key(field)] = f"ipv4:{addresses}" if replicas > 1 else addresses
    return out


def replica_addresses(env: Mapping[str, str], field: str) -> list[str]:
    """The listen address of each replica of the service whose setting is `field`."""
    return env[_key(field)].removeprefix("ipv4:").split(",")


def add_replicated_mesh(
    supervisor: Supervisor, settings: Settings, env: Mapping[str, str], replicas: int
) -> list[int]:
    """Every service `replicas` times (each told its own listen address), then as many
    gateways on ports of their own; returns the gateways' HTTP ports. Children are named
    `<service>-<n>`."""
    for name, module, field in SERVICES:
        for n, address in enumerate(replica_addresses(env, field), start=1):
            own = {**env, _key(field): address}
            supervisor.add(
                f"{name}-{n}", [sys.executable, "-m", module], own, grpc_probe(address, settings)
            )
    ports = [pick_free_port() for _ in range(replicas)]
    for n, port in enumerate(ports, start=1):
        own = {**env, "ORCH_GATEWAY_PORT": str(port)}
        health = http_probe(f"http://{settings.gateway_host}:{port}/health")
        supervisor.add(
            f"gateway-{n}", [sys.executable, "-m", "orchestrator.gateway.main"], own, health
        )
    return ports


def by_service(pids: Mapping[str, list[int]]) -> dict[str, list[int]]:
    """Process ids grouped by service: the replicas `task-1` and `task-2` count as `task`."""
    out: dict[str, list[int]] = {}
    for name, ids in pids.items():
        base, _, n = name.rpartition("-")
        out.setdefault(base if base and n.isdigit() else name, []).extend(ids)
    return out


def _key(field: str) -> str:
    return f"ORCH_{field.upper()}"
