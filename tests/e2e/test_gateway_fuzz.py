"""The gateway fuzzed against its own OpenAPI document: no request makes it answer 5xx.

Schemathesis generates requests for every operation of `/openapi.json`: valid ones, which must
also get a status and a body the document declares, and invalid ones (wrong types, out of range,
missing fields). Path ids are random (the 404 paths) or those of a session, task, agent and
contexts made beforehand, so bodies and queries reach the services' rules too. The gateway and
the services run in this process on a stack of their own: the fuzzer's agents, sessions and
tasks are no other test's business. Derandomized: the same examples every run, so a failure here
is a bug, not luck.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from orchestrator.common.settings import Settings
from orchestrator.common.stack import EmbeddedStack, pick_free_port
from tests.support.mesh import running_gateway, running_service

pytestmark = pytest.mark.timeout(180)

# Examples per operation, mode and kind of path ids: about 1,500 requests, some 20 s.
EXAMPLES = 8

Check = Callable[..., Any]


@pytest.fixture
async def own_gateway(settings: Settings) -> AsyncIterator[str]:
    """A gateway in front of the four services, on a private embedded stack."""
    from orchestrator.agent.main import serve as serve_agent
    from orchestrator.context.main import serve as serve_context
    from orchestrator.session.main import serve as serve_session
    from orchestrator.task.main import serve as serve_task

    data_dir = Path(tempfile.mkdtemp(prefix="orch-fuzz-"))
    data_dir.chmod(0o755)  # the embedded PostgreSQL runs as another user when we are root
    try:
        async with EmbeddedStack(data_dir) as stack:
            update: dict[str, Any] = {
                "database_url": stack.database_url,
                "nats_url": stack.nats_url,
                "redis_url": stack.redis_url,
                "gateway_port": pick_free_port(),
            }
            for name in ("session", "agent", "task", "context"):
                update[f"{name}_addr"] = f"127.0.0.1:{pick_free_port()}"
            if "gateway_auth" in Settings.model_fields:
                # The API itself is fuzzed here; API keys have their own tests.
                update["gateway_auth"] = "off"
            own = settings.model_copy(update=update)
            async with contextlib.AsyncExitStack() as services:
                for name, serve in (
                    ("session", serve_session),
                    ("agent", serve_agent),
                    ("task", serve_task),
                    ("context", serve_context),
                ):
                    address = update[f"{name}_addr"]
                    await services.enter_async_context(running_service(serve, address, name, own))
                yield await services.enter_async_context(running_gateway(own))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def _seed(http: httpx.AsyncClient) -> dict[str, str]:
    """Path ids of real resources: a session with a task, an agent, two contexts."""

    async def create(path: str, body: dict[str, Any]) -> str:
        reply = await http.post(path, json=body)
        assert reply.status_code == 201, reply.text
        return str(reply.json()["id"])

    session = await create(
        "/api/v1/sessions",
        {"title": "IND-FUZZ", "initial_prompt": "fuzz", "agent_config": {"max_depth": "0"}},
    )
    task = await create("/api/v1/tasks", {"session_id": session, "title": "fuzzed task"})
    agent = await create(
        "/api/v1/agents",
        {
            "name": f"AGENT-FUZZ-{uuid.uuid4().hex[:8].upper()}",
            "agent_type": "implementer",
            "primary_capabilities": ["code_generation"],
        },
    )
    contexts = [
        await create("/api/v1/contexts", {"scope": "global", "name": name, "data": {"a": {"b": 1}}})
        for name in ("fuzz-a", "fuzz-b")
    ]
    return {
        "session_id": session,
        "task_id": task,
        "agent_id": agent,
        "context_id": contexts[0],
        "other_context_id": contexts[1],
    }


@dataclass
class Findings:
    failures: list[str] = field(default_factory=list)
    requests: int = 0


def _fuzz(document: dict[str, Any], base_url: str, ids: dict[str, str]) -> Findings:
    """Runs in a thread: the gateway and the services serve on the test's event loop."""
    schema = schemathesis.openapi.from_dict(document)
    operations = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            raise AssertionError(f"/openapi.json has an operation it cannot test: {result.err()}")
        operations.append(result.ok())
    # Deletions last, so the seeded resources live through every other operation.
    operations.sort(key=lambda operation: operation.method.upper() == "DELETE")
    findings = Findings()
    with requests.Session() as session:
        for operation in operations:
            in_path = re.findall(r"{(\w+)}", operation.path)
            seeded = {name: ids[name] for name in in_path if name in ids}
            for path_ids in ({}, seeded) if seeded else ({},):
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    checks: list[Check] = [not_a_server_error]
                    if mode is GenerationMode.POSITIVE:
                        checks += [status_code_conformance, response_schema_conformance]
                    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_ids)
                    label = f"{operation.label} ({mode.value}{', seeded ids' if path_ids else ''})"
                    try:
                        _exercise(strategy, checks, base_url, session, findings)
                    except Unsatisfiable:
                        pass  # nothing to make invalid (no parameters, or free-form strings)
                    except (Exception, BaseExceptionGroup) as exc:
                        findings.failures.append(f"{label}: {exc}")
    return findings


def _exercise(
    strategy: Any,
    checks: list[Check],
    base_url: str,
    session: requests.Session,
    findings: Findings,
) -> None:
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=strategy)
    def exercise(case: Any) -> None:
        findings.requests += 1
        response = case.call(base_url=base_url, session=session, timeout=15)
        case.validate_response(response, checks=checks)

    exercise()


async def test_no_generated_request_gets_a_5xx(own_gateway: str) -> None:
    async with httpx.AsyncClient(base_url=own_gateway, timeout=10) as http:
        document = (await http.get("/openapi.json")).json()
        ids = await _seed(http)
    began = time.monotonic()
    findings = await asyncio.to_thread(_fuzz, document, own_gateway, ids)
    took = time.monotonic() - began
    print(f"fuzzed {findings.requests} requests in {took:.1f} s")
    assert findings.requests > 500
    assert not findings.failures, "\n\n".join(findings.failures)


async def test_data_nested_deeper_than_protobuf_reads_is_a_422(gateway: str) -> None:
    """Regression: a context 150 levels deep made the service fail to decode the request (500)."""
    deep: Any = 1
    for _ in range(150):
        deep = {"a": deep}
    async with httpx.AsyncClient(base_url=gateway, timeout=10) as http:
        reply = await http.post(
            "/api/v1/contexts",
            json={"scope": "global", "name": f"deep-{uuid.uuid4().hex[:8]}", "data": deep},
        )
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["field"].startswith("data.a.a")
