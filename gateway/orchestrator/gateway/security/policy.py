"""Which scope each request needs: one table of path prefixes and methods.

`/api/…` and `/ws/…` are guarded; everything else (probes, /metrics, the docs, the dashboard's
files) is open. Reading (GET, HEAD, WebSockets) needs `read`, any other method `write`, key
management `admin`.
"""

from __future__ import annotations

from orchestrator.gateway.security.keys import Scope

KEYS_PATH = "/api/v1/keys"
_GUARDED = ("/api/", "/ws/")
_READING = frozenset({"GET", "HEAD", "OPTIONS"})


def required_scope(kind: str, method: str, path: str) -> Scope | None:
    """The scope a request needs; None when it needs no key at all."""
    if not (path.startswith(_GUARDED) or path in ("/api", "/ws")):
        return None
    if path == KEYS_PATH or path.startswith(KEYS_PATH + "/"):
        return "admin"
    if kind == "websocket" or method.upper() in _READING:
        return "read"
    return "write"
