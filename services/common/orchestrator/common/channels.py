"""Every gRPC client channel of the mesh comes from here, so TLS is decided in one place.

A channel connects lazily on its first call; it must be made inside the running event loop
(grpc.aio binds channels to it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from orchestrator.common.settings import Settings
from orchestrator.common.tls import channel_credentials

# One address is one replica either way; several are used in turn, skipping those down. A
# replica that went away is tried again at most 2 s apart (gRPC's own backoff grows to 120 s),
# so a restarted service is reached again within seconds of coming back.
_BALANCED = (
    ("grpc.lb_policy_name", "round_robin"),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
)


def open_channel(
    target: str, settings: Settings, *, options: Sequence[tuple[str, Any]] = ()
) -> grpc.aio.Channel:
    """A channel to `target`: TLS as the settings say, plain otherwise. `target` is host:port,
    or several replicas of a service (`ipv4:127.0.0.1:50053,127.0.0.1:50063`, or a DNS name
    that resolves to many): calls go round robin over those that answer."""
    options = [*_BALANCED, *options]
    credentials = channel_credentials(settings)
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options)
    tls_options = list(options)
    if settings.grpc_tls_server_name:
        tls_options.append(("grpc.ssl_target_name_override", settings.grpc_tls_server_name))
    return grpc.aio.secure_channel(target, credentials, options=tls_options)
