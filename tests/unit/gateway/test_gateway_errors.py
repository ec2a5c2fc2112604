"""The one gRPC → HTTP table (SPEC §5) and the error body every failure shares."""

from __future__ import annotations

import grpc
import pytest

from orchestrator.gateway.errors import HTTP_STATUS_OF, error_body, http_status_of

pytestmark = pytest.mark.timeout(30)

SPEC_TABLE = {
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


@pytest.mark.parametrize("code", list(grpc.StatusCode), ids=lambda c: c.name)
def test_every_grpc_status_has_its_http_status(code: grpc.StatusCode) -> None:
    assert http_status_of(code) == SPEC_TABLE.get(code, 500)


def test_the_table_is_exactly_the_spec() -> None:
    assert HTTP_STATUS_OF == SPEC_TABLE


def test_the_error_body_shape() -> None:
    assert error_body("aborted", "stale version", "expected_version") == {
        "error": {"code": "aborted", "message": "stale version", "field": "expected_version"}
    }
    assert error_body("not_found", "gone")["error"]["field"] is None
