"""`python -m orchestrator.gateway.main`: the gateway process."""

from __future__ import annotations

import math
from pathlib import Path

import uvicorn

from orchestrator.common.logs import configure_logging
from orchestrator.common.settings import load_settings
from orchestrator.common.telemetry import configure_tracing, shutdown_tracing
from orchestrator.gateway.app import create_app
from orchestrator.gateway.security.logs import redact_logs

# gateway/orchestrator/gateway/main.py → the checkout's root, where `dashboard/` lives.
DASHBOARD_DIST = Path(__file__).resolve().parents[3] / "dashboard" / "dist"


def main() -> None:
    settings = load_settings()
    configure_logging("gateway", settings.log_level, settings.log_json)
    redact_logs()
    configure_tracing("gateway", settings.otel_exporter, settings.otel_exporter_endpoint)
    app = create_app(settings, dashboard_dir=DASHBOARD_DIST)
    config = uvicorn.Config(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_config=None,  # keep the JSON logging configured above
        ws="websockets-sansio",
        lifespan="on",
        # uvicorn stops on SIGTERM/SIGINT: stops accepting, closes sockets, waits this long for
        # requests in flight, then runs the lifespan shutdown that closes our connections.
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_seconds),
    )
    try:
        uvicorn.Server(config).run()
    finally:
        shutdown_tracing()  # the spans still buffered go out


if __name__ == "__main__":
    main()
