"""Every failure becomes `{"error": {"code", "message", "field"}}`; the one gRPC → HTTP table.

`install_error_handlers` is the only place exceptions are mapped to responses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from orchestrator.common.errors import OrchestratorError
from orchestrator.common.grpc_server import ERROR_CODE_KEY, ERROR_FIELD_KEY, status_of

log = logging.getLogger(__name__)

HTTP_STATUS_OF: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}

# Codes for statuses the gateway itself answers with (not from a service).
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None


class ErrorJson(BaseModel):
    """The body of every error response (documentation; handlers build it directly)."""

    error: ErrorDetail


# Route metadata documenting errors; it also replaces FastAPI's own 422 shape in /openapi.json.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorJson, "description": "Refused: `error.code` says why"},
    "5XX": {"model": ErrorJson, "description": "A service or the gateway failed"},
}


def http_status_of(code: grpc.StatusCode) -> int:
    return HTTP_STATUS_OF.get(code, 500)


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def error_response(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, field), status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(grpc.aio.AioRpcError, _rpc_error)  # type: ignore[arg-type]
    app.add_exception_handler(OrchestratorError, _orchestrator_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)


async def _rpc_error(request: Request, exc: grpc.aio.AioRpcError) -> JSONResponse:
    status = http_status_of(exc.code())
    trailers = _metadata(exc.trailing_metadata())
    code = trailers.get(ERROR_CODE_KEY) or exc.code().name.lower()
    message = exc.details() or exc.code().name.lower().replace("_", " ")
    if status >= 500:
        log.warning(
            "%s %s: gRPC %s: %s", request.method, request.url.path, exc.code().name, message
        )
    return error_response(status, code, message, trailers.get(ERROR_FIELD_KEY))


def _metadata(pairs: Iterable[tuple[str, str | bytes]] | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in pairs or ():
        found[key] = value.decode() if isinstance(value, bytes) else value
    return found


async def _orchestrator_error(request: Request, exc: OrchestratorError) -> JSONResponse:
    """Raised in the gateway itself, e.g. by the codec; mapped like a service's error."""
    return error_response(http_status_of(status_of(exc)), exc.code, exc.message, exc.field)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = list(exc.errors())
    if problems and problems[0].get("type") == "json_invalid":
        detail = problems[0].get("ctx", {}).get("error", "malformed JSON")
        return error_response(422, "invalid_json", f"request body is not valid JSON: {detail}")
    fields = [_dotted(problem.get("loc", ())) for problem in problems]
    message = "; ".join(
        f"{field}: {problem.get('msg', 'invalid')}" if field else str(problem.get("msg"))
        for field, problem in zip(fields, problems, strict=True)
    )
    return error_response(422, "invalid_argument", message, fields[0] if fields else None)


def _dotted(loc: Iterable[Any]) -> str | None:
    """`("body", "limits", "max_retries")` → `limits.max_retries`: the field, not where it came."""
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or None


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    if exc.status_code == 400:
        # FastAPI answers 400 only when it cannot decode a body (e.g. invalid UTF-8): bad JSON.
        return error_response(422, "invalid_json", "request body could not be decoded as JSON")
    code = _HTTP_CODES.get(exc.status_code) or _slug(exc.status_code)
    message = str(exc.detail)
    if exc.status_code == 404 and message == HTTPStatus.NOT_FOUND.phrase:
        message = f"no such resource: {request.method} {request.url.path}"
    response = error_response(exc.status_code, code, message)
    response.headers.update(exc.headers or {})
    return response


def _slug(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal", "internal error in the gateway; see its log")
