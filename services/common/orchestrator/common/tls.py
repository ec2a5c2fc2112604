"""TLS on the mesh's gRPC links: a server's credentials and a client's, from the settings.

TLS is on when `ORCH_GRPC_TLS_CA_FILE` or `ORCH_GRPC_TLS_CERT_FILE` is set; then every server
serves only TLS and every client dials with it. With client auth `require`, servers also refuse
clients that present no certificate signed by the CA.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from orchestrator.common.settings import Settings, SettingsError


class TlsConfigError(SettingsError):
    pass


# The settings that travel to child processes (`orch up`), by field name.
TLS_FIELDS = (
    "grpc_tls_ca_file",
    "grpc_tls_cert_file",
    "grpc_tls_key_file",
    "grpc_tls_client_auth",
    "grpc_tls_client_cert_file",
    "grpc_tls_client_key_file",
    "grpc_tls_server_name",
)


def tls_enabled(settings: Settings) -> bool:
    return settings.grpc_tls_ca_file is not None or settings.grpc_tls_cert_file is not None


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """None when TLS is off; a server with TLS on needs its own certificate and key."""
    if not tls_enabled(settings):
        return None
    _check_pairs(settings)
    if settings.grpc_tls_cert_file is None or settings.grpc_tls_key_file is None:
        raise TlsConfigError(
            "a gRPC server with TLS on needs ORCH_GRPC_TLS_CERT_FILE and ORCH_GRPC_TLS_KEY_FILE"
        )
    pair = (
        _read(settings.grpc_tls_key_file, "ORCH_GRPC_TLS_KEY_FILE"),
        _read(settings.grpc_tls_cert_file, "ORCH_GRPC_TLS_CERT_FILE"),
    )
    ca = settings.grpc_tls_ca_file
    require = settings.grpc_tls_client_auth == "require" and ca is not None
    roots = _read(ca, "ORCH_GRPC_TLS_CA_FILE") if require and ca else None
    return grpc.ssl_server_credentials([pair], root_certificates=roots, require_client_auth=require)


def channel_credentials(settings: Settings) -> grpc.ChannelCredentials | None:
    """None when TLS is off. Servers are checked against the CA (the system's roots without
    one); the client certificate, when there is one, is presented to servers that ask."""
    if not tls_enabled(settings):
        return None
    _check_pairs(settings)
    roots = settings.grpc_tls_ca_file
    chain = key = None
    if settings.grpc_tls_client_cert_file and settings.grpc_tls_client_key_file:
        chain = _read(settings.grpc_tls_client_cert_file, "ORCH_GRPC_TLS_CLIENT_CERT_FILE")
        key = _read(settings.grpc_tls_client_key_file, "ORCH_GRPC_TLS_CLIENT_KEY_FILE")
    elif settings.grpc_tls_cert_file and settings.grpc_tls_key_file:
        chain = _read(settings.grpc_tls_cert_file, "ORCH_GRPC_TLS_CERT_FILE")
        key = _read(settings.grpc_tls_key_file, "ORCH_GRPC_TLS_KEY_FILE")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(roots, "ORCH_GRPC_TLS_CA_FILE") if roots else None,
        private_key=key,
        certificate_chain=chain,
    )


def tls_environment(settings: Settings) -> dict[str, str]:
    """The TLS settings as `ORCH_*` variables for a child process, paths made absolute."""
    env: dict[str, str] = {}
    for name in TLS_FIELDS:
        value = getattr(settings, name)
        if value is not None:
            env[f"ORCH_{name.upper()}"] = str(value.resolve() if isinstance(value, Path) else value)
    return env


def _check_pairs(settings: Settings) -> None:
    pairs = (
        (settings.grpc_tls_cert_file, settings.grpc_tls_key_file, ""),
        (settings.grpc_tls_client_cert_file, settings.grpc_tls_client_key_file, "CLIENT_"),
    )
    for cert, key, kind in pairs:
        if (cert is None) != (key is None):
            raise TlsConfigError(
                f"ORCH_GRPC_TLS_{kind}CERT_FILE and ORCH_GRPC_TLS_{kind}KEY_FILE go together: "
                "set both or neither"
            )
    if settings.grpc_tls_client_auth == "require" and settings.grpc_tls_ca_file is None:
        raise TlsConfigError(
            "ORCH_GRPC_TLS_CLIENT_AUTH=require needs ORCH_GRPC_TLS_CA_FILE "
            "(the CA client certificates must be signed by)"
        )


def _read(path: Path, variable: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"{variable}: cannot read {path}: {exc.strerror or exc}") from exc
