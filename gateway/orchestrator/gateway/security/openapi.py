"""Declares the API key in /openapi.json: the schemes, and on each guarded operation the
requirement and the scope it needs (so /docs has an Authorize button and says what needs what)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from orchestrator.gateway.security.policy import required_scope

SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`orch keys create`): `Authorization: Bearer orch_…`",
    },
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")


def install_security_schema(app: FastAPI, *, enabled: bool) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            if enabled:
                _declare(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _declare(schema: dict[str, Any]) -> None:
    schema.setdefault("components", {})["securitySchemes"] = SCHEMES
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            scope = required_scope("http", method, path)
            if scope is None:
                continue
            operation["security"] = [{name: []} for name in SCHEMES]
            note = f"Needs an API key with scope `{scope}`."
            operation["description"] = f"{operation.get('description', '')}\n\n{note}".strip()
