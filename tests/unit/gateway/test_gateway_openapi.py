"""/openapi.json lists every agent, task and context route, with enum values from the protos."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from orchestrator.common.settings import Settings
from orchestrator.gateway.app import create_app

pytestmark = pytest.mark.timeout(30)

TASK_ACTIONS = (
    "assign",
    "start",
    "complete",
    "fail",
    "renew-lease",
    "release",
    "block",
    "pause",
    "resume",
    "cancel",
    "skip",
    "approve",
    "reject",
)

EXPECTED: dict[str, set[str]] = {
    "/api/v1/agents": {"get", "post"},
    "/api/v1/agents/route": {"post"},
    "/api/v1/agents/{agent_id}": {"get", "delete"},
    "/api/v1/agents/{agent_id}/heartbeat": {"post"},
    "/api/v1/agents/{agent_id}/drain": {"post"},
    "/api/v1/agents/{agent_id}/results": {"post"},
    "/api/v1/tasks": {"get", "post"},
    "/api/v1/tasks/{task_id}": {"get"},
    "/api/v1/tasks/{task_id}/decompose": {"post"},
    "/api/v1/tasks/{task_id}/dependencies": {"post", "delete"},
    "/api/v1/sessions/{session_id}/graph": {"get"},
    **{f"/api/v1/tasks/{{task_id}}/{action}": {"post"} for action in TASK_ACTIONS},
    "/api/v1/contexts": {"get", "post"},
    "/api/v1/contexts/merge": {"post"},
    "/api/v1/contexts/{context_id}": {"get", "patch", "delete"},
    "/api/v1/contexts/{context_id}/diff/{other_context_id}": {"get"},
    "/api/v1/contexts/{context_id}/history": {"get"},
    "/api/v1/contexts/{context_id}/share": {"post"},
    "/api/v1/contexts/{context_id}/clone": {"post"},
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """Built once: generating the document takes a noticeable fraction of a second."""
    return create_app(Settings()).openapi()


async def test_openapi_json_lists_every_new_route(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    missing = {
        path: methods - set(paths.get(path, {}))
        for path, methods in EXPECTED.items()
        if not methods <= set(paths.get(path, {}))
    }
    assert missing == {}


def test_creation_routes_document_201(spec: dict[str, Any]) -> None:
    for path in ("/api/v1/agents", "/api/v1/tasks", "/api/v1/contexts"):
        assert "201" in spec["paths"][path]["post"]["responses"], path
    assert "201" in spec["paths"]["/api/v1/tasks/{task_id}/dependencies"]["post"]["responses"]
    assert "201" in spec["paths"]["/api/v1/contexts/{context_id}/clone"]["post"]["responses"]


def test_enums_are_listed_from_the_protos(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    agent_type = schemas["RegisterAgentBody"]["properties"]["agent_type"]
    assert "implementer" in agent_type["enum"]
    op = schemas["OperationBody"]["properties"]["op"]
    assert op["enum"] == ["set", "delete"]
    strategy = schemas["MergeBody"]["properties"]["strategy"]
    assert strategy["enum"] == [
        "last_write_wins",
        "deep_merge",
        "prefer_source",
        "prefer_target",
        "manual",
    ]
    for name in ("Agent", "Task", "Context", "GetGraphResponse", "RouteTaskResponse"):
        assert name in schemas, name


def test_schema_names_do_not_collide(spec: dict[str, Any]) -> None:
    # Two models of one name would get module-path names (`orchestrator__…`) in the document.
    assert not [name for name in spec["components"]["schemas"] if "__" in name]
