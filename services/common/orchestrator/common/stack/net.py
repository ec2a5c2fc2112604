"""Loopback ports: pick a free one, or prove a requested one is free before a server wants it."""

from __future__ import annotations

import asyncio
import contextlib
import socket

from orchestrator.common.stack.errors import StackError

HOST = "127.0.0.1"
# The system services on this kind of box own these; an embedded server must never take them.
RESERVED_PORTS = frozenset({5432, 6379, 4222})


def _bind_probe(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option the servers use, so a TIME_WAIT leftover does not count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))


def pick_free_port() -> int:
    """A port the kernel says is free now (there is a small race until the server binds it)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port not in RESERVED_PORTS:
            return port
    raise StackError(f"could not find a free port on {HOST}")


def claim_port(port: int | None, what: str) -> int:
    """`port`, checked free, or a free one when None."""
    if port is None:
        return pick_free_port()
    try:
        _bind_probe(port)
    except OSError as exc:
        raise StackError(
            f"port {port} on {HOST} is already in use ({what} needs it; stop whatever "
            f"listens there or choose another port): {exc.strerror}"
        ) from exc
    return port


async def tcp_accepts(port: int, within: float = 1.0) -> bool:
    """True when something accepts a TCP connection on the loopback port."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), within)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
