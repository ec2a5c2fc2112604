"""Loopback ports: pick a free one, or prove a requested one is free before a server wants it."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from pathlib import Path

from orchestrator.common.stack.errors import StackError

HOST = "127.0.0.1"
# The system services on this kind of box own these; an embedded server must never take them.
RESERVED_PORTS = frozenset({5432, 6379, 4222})
# Picks come from below the kernel's ephemeral range: a port in that range, once the probe
# socket is closed, can be handed to any outgoing connection before the server binds it (seen
# in CI as a service dying on "Address already in use" for its metrics port).
LOWEST_PICK = 10_000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_picked: set[int] = set()


def _bind_probe(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option the servers use, so a TIME_WAIT leftover does not count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))


def ephemeral_range(source: Path = _EPHEMERAL_RANGE) -> tuple[int, int] | None:
    """The kernel's range for outgoing connections' ports; None where it cannot be read."""
    try:
        low, high = (int(part) for part in source.read_text().split())
    except (OSError, ValueError):
        return None
    return low, high


def pick_free_port() -> int:
    """A port free now that this process has not picked before, outside the ephemeral range
    so no outgoing connection takes it before the server binds it (the race left is another
    process picking the same port in that moment)."""
    span = ephemeral_range()
    if span is None or span[0] - LOWEST_PICK < 1_000:
        return _kernel_pick()
    if len(_picked) > (span[0] - LOWEST_PICK) // 2:
        _picked.clear()
    for _ in range(200):
        port = random.randrange(LOWEST_PICK, span[0])
        if port in RESERVED_PORTS or port in _picked:
            continue
        try:
            _bind_probe(port)
        except OSError:
            continue
        _picked.add(port)
        return port
    return _kernel_pick()


def _kernel_pick() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port not in RESERVED_PORTS and port not in _picked:
            _picked.add(port)
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
