"""Process liveness and mesh readiness, for probes and `orch up`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from orchestrator.gateway.readiness import check_all
from orchestrator.gateway.resources import ResourcesDep

router = APIRouter(tags=["health"])


@router.get("/health", summary="The gateway process is up")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/live", summary="The gateway process is up (Kubernetes liveness)")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="PostgreSQL, Redis, NATS and every expected service answer",
    responses={503: {"description": "At least one check is failing; `checks` says which"}},
)
async def ready(resources: ResourcesDep) -> JSONResponse:
    checks: dict[str, Any] = await check_all(resources)
    ok = all(check["status"] == "ok" for check in checks.values())
    body = {"status": "ready" if ok else "not_ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503)
