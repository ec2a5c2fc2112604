"""What every in-process fake stub shares: service-like errors and request recording."""

from __future__ import annotations

from typing import Any

import grpc


def rpc_error(
    code: grpc.StatusCode, details: str, *, error_code: str = "", field: str = ""
) -> grpc.aio.AioRpcError:
    """What a service's error interceptor produces: a status plus `orch-error-*` trailers."""
    pairs = [("orch-error-code", error_code)] if error_code else []
    if field:
        pairs.append(("orch-error-field", field))
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*pairs), details=details
    )


def not_found(kind: str, ident: str) -> grpc.aio.AioRpcError:
    return rpc_error(grpc.StatusCode.NOT_FOUND, f"{kind} {ident} does not exist")


class RecordingStub:
    """Records every request; `fail_with` makes the next calls fail like the service would."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.fail_with: grpc.aio.AioRpcError | None = None

    def _record(self, request: Any) -> None:
        self.requests.append(request)
        if self.fail_with is not None:
            raise self.fail_with

    @property
    def last(self) -> Any:
        return self.requests[-1]
