"""Which TLS settings make sense together, and what children of `orch up` are told."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.common.settings import Settings
from orchestrator.common.tls import (
    TlsConfigError,
    channel_credentials,
    server_credentials,
    tls_environment,
)
from tests.support.certs import Authority


def test_tls_is_off_without_a_ca_or_a_certificate() -> None:
    settings = Settings()
    assert server_credentials(settings) is None
    assert channel_credentials(settings) is None
    assert tls_environment(settings) == {"ORCH_GRPC_TLS_CLIENT_AUTH": "none"}


def test_client_auth_needs_a_ca(tmp_path: Path) -> None:
    cert = Authority(tmp_path).issue("server")
    settings = Settings(
        grpc_tls_cert_file=cert.cert, grpc_tls_key_file=cert.key, grpc_tls_client_auth="require"
    )
    with pytest.raises(TlsConfigError, match="ORCH_GRPC_TLS_CA_FILE"):
        server_credentials(settings)


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    cert = Authority(tmp_path).issue("server")
    with pytest.raises(TlsConfigError, match="set both or neither"):
        channel_credentials(Settings(grpc_tls_cert_file=cert.cert))
    with pytest.raises(TlsConfigError, match="CLIENT_CERT_FILE and ORCH_GRPC_TLS_CLIENT_KEY"):
        channel_credentials(Settings(grpc_tls_ca_file=cert.cert, grpc_tls_client_key_file=cert.key))


def test_a_server_with_only_a_ca_has_nothing_to_present(tmp_path: Path) -> None:
    ca = Authority(tmp_path)
    with pytest.raises(TlsConfigError, match="needs ORCH_GRPC_TLS_CERT_FILE"):
        server_credentials(Settings(grpc_tls_ca_file=ca.ca_file))
    assert channel_credentials(Settings(grpc_tls_ca_file=ca.ca_file)) is not None


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(TlsConfigError, match=r"ORCH_GRPC_TLS_CA_FILE: cannot read .*nope\.pem"):
        channel_credentials(Settings(grpc_tls_ca_file=missing))


def test_an_invalid_client_auth_mode_fails_validation() -> None:
    with pytest.raises(ValueError, match="grpc_tls_client_auth"):
        Settings(grpc_tls_client_auth="optional")


def test_children_are_told_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = Authority(tmp_path)
    monkeypatch.chdir(tmp_path)
    settings = Settings(
        grpc_tls_ca_file=Path(ca.ca_file.name),
        grpc_tls_client_auth="require",
        grpc_tls_server_name="orch.internal",
    )
    assert tls_environment(settings) == {
        "ORCH_GRPC_TLS_CA_FILE": str(ca.ca_file),
        "ORCH_GRPC_TLS_CLIENT_AUTH": "require",
        "ORCH_GRPC_TLS_SERVER_NAME": "orch.internal",
    }
