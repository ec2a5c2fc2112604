"""The images' HEALTHCHECK: `python healthcheck.py session|agent|task|context|gateway`.

A service is healthy when its own gRPC server answers grpc.health.v1 with SERVING (service
name "", over TLS when the ORCH_GRPC_TLS_* settings say so); the gateway when /live answers 200.
The address is the one the process listens on, from the same settings, dialled on loopback.
Exit status 0 = healthy, 1 = not.
"""

from __future__ import annotations

import asyncio
import sys

from orchestrator.common.probes import grpc_serving, http_probe
from orchestrator.common.settings import Settings, load_settings

SERVICES = ("session", "agent", "task", "context")
WITHIN_SECONDS = 3.0


def local_address(listen: str) -> str:
    """Where to dial a server listening on `listen`: wildcard hosts become loopback."""
    host, _, port = listen.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = "127.0.0.1"
    return f"{host}:{port}"


async def healthy(process: str, settings: Settings) -> bool:
    if process == "gateway":
        return await http_probe(
            f"http://127.0.0.1:{settings.gateway_port}/live", within=WITHIN_SECONDS
        )()
    listen: str = getattr(settings, f"{process}_addr")
    return await grpc_serving(local_address(listen), settings, within=WITHIN_SECONDS)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in (*SERVICES, "gateway"):
        print(f"usage: healthcheck.py {'|'.join((*SERVICES, 'gateway'))}", file=sys.stderr)
        return 2
    return 0 if asyncio.run(healthy(argv[0], load_settings())) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
