"""TLS and mutual TLS between the mesh's gRPC servers and clients, with real certificates."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from orchestrator.api.session.v1 import session_pb2 as spb
from orchestrator.api.session.v1 import session_pb2_grpc
from orchestrator.common.channels import open_channel
from orchestrator.common.grpc_server import GrpcServer
from orchestrator.common.probes import grpc_serving
from orchestrator.common.settings import Settings
from orchestrator.common.stack import pick_free_port
from tests.support.certs import Authority
from tests.support.mesh import running_gateway, running_session_service

pytestmark = pytest.mark.timeout(30)

PLAIN = Settings()


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    return Authority(tmp_path)


def _server_settings(
    ca: Authority, *, client_auth: str = "none", hosts: tuple[str, ...] = ()
) -> Settings:
    cert = ca.issue("orch server", hosts) if hosts else ca.issue("orch server")
    return Settings(
        grpc_tls_ca_file=ca.ca_file,
        grpc_tls_cert_file=cert.cert,
        grpc_tls_key_file=cert.key,
        grpc_tls_client_auth=client_auth,
    )


async def _serving(settings: Settings) -> AsyncIterator[str]:
    address = f"127.0.0.1:{pick_free_port()}"
    server = GrpcServer(address, settings)
    await server.start()
    try:
        yield address
    finally:
        await server.stop(grace=0)


async def _check(address: str, settings: Settings) -> grpc.StatusCode:
    """OK when a health check over a channel made from `settings` succeeds; else its code."""
    async with open_channel(address, settings) as channel:
        try:
            await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


@pytest.fixture
async def tls_server(ca: Authority) -> AsyncIterator[str]:
    async for address in _serving(_server_settings(ca)):
        yield address


@pytest.fixture
async def mtls_server(ca: Authority) -> AsyncIterator[str]:
    async for address in _serving(_server_settings(ca, client_auth="require")):
        yield address


async def test_a_tls_server_answers_a_client_that_trusts_its_ca(
    tls_server: str, ca: Authority
) -> None:
    client = Settings(grpc_tls_ca_file=ca.ca_file)
    assert await _check(tls_server, client) == grpc.StatusCode.OK
    # The readiness probe `orch up` and the fixtures use speaks TLS too.
    assert await grpc_serving(tls_server, client)


async def test_a_tls_server_refuses_a_plaintext_client(tls_server: str) -> None:
    assert await _check(tls_server, PLAIN) == grpc.StatusCode.UNAVAILABLE
    assert not await grpc_serving(tls_server, PLAIN)


async def test_a_client_refuses_a_server_its_ca_did_not_sign(
    tls_server: str, tmp_path: Path
) -> None:
    other = Authority(tmp_path, name="other CA")
    client = Settings(grpc_tls_ca_file=other.ca_file)
    assert await _check(tls_server, client) == grpc.StatusCode.UNAVAILABLE


async def test_client_auth_refuses_a_client_without_a_certificate(
    mtls_server: str, ca: Authority
) -> None:
    client = Settings(grpc_tls_ca_file=ca.ca_file)
    assert await _check(mtls_server, client) == grpc.StatusCode.UNAVAILABLE


async def test_client_auth_accepts_a_certificate_the_ca_signed(
    mtls_server: str, ca: Authority
) -> None:
    cert = ca.issue("orch worker")
    client = Settings(
        grpc_tls_ca_file=ca.ca_file,
        grpc_tls_client_cert_file=cert.cert,
        grpc_tls_client_key_file=cert.key,
    )
    assert await _check(mtls_server, client) == grpc.StatusCode.OK


async def test_client_auth_refuses_a_certificate_another_ca_signed(
    mtls_server: str, ca: Authority, tmp_path: Path
) -> None:
    other = Authority(tmp_path, name="other CA")
    cert = other.issue("intruder")
    client = Settings(
        grpc_tls_ca_file=ca.ca_file,
        grpc_tls_client_cert_file=cert.cert,
        grpc_tls_client_key_file=cert.key,
    )
    assert await _check(mtls_server, client) == grpc.StatusCode.UNAVAILABLE


async def test_the_server_name_override_checks_a_name_other_than_the_address(
    ca: Authority,
) -> None:
    async for address in _serving(_server_settings(ca, hosts=("session.orch.internal",))):
        by_address = Settings(grpc_tls_ca_file=ca.ca_file)
        assert await _check(address, by_address) == grpc.StatusCode.UNAVAILABLE
        by_name = Settings(
            grpc_tls_ca_file=ca.ca_file, grpc_tls_server_name="session.orch.internal"
        )
        assert await _check(address, by_name) == grpc.StatusCode.OK


async def test_a_mesh_on_mutual_tls_serves_the_gateway_and_its_clients(
    settings: Settings, ca: Authority
) -> None:
    """The session service serves only mutual TLS: the gateway, holding the certificate every
    process of this mesh has, reaches it (its /ready asks over its channel), a client with that
    certificate creates a session and reads it back, and a plaintext client is refused."""
    cert = ca.issue("orch mesh")
    mesh = settings.model_copy(
        update={
            "session_addr": f"127.0.0.1:{pick_free_port()}",
            "gateway_port": pick_free_port(),
            "grpc_tls_ca_file": ca.ca_file,
            "grpc_tls_cert_file": cert.cert,
            "grpc_tls_key_file": cert.key,
            "grpc_tls_client_auth": "require",
        }
    )
    async with running_session_service(mesh) as address, running_gateway(mesh) as base:
        assert await _check(address, PLAIN) == grpc.StatusCode.UNAVAILABLE
        async with open_channel(address, mesh) as channel:
            sessions: Any = session_pb2_grpc.SessionServiceStub(channel)
            request = spb.CreateSessionRequest(
                title=f"IND-TLS {uuid.uuid4().hex[:8]}", initial_prompt="over mutual TLS"
            )
            created = (await sessions.CreateSession(request, timeout=10)).session
            get = spb.GetSessionRequest(session_id=created.id)
            assert (await sessions.GetSession(get, timeout=10)).session.title == request.title
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            ready = (await http.get("/ready")).json()
        assert ready["checks"]["session"] == {"status": "ok"}, ready
