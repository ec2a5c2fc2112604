"""Fetching from a JetStream pull consumer without waiting for a batch to fill.

nats-py's `fetch(n)` returns early only while messages are already waiting: once its long poll
has the first message it waits for the other n-1 (or the timeout). Under a trickle of work that
holds a ready message back for the whole timeout. `fetch_ready` long-polls for one message,
then takes whatever else is waiting at that moment, so a message is handed over as soon as it
arrives and a burst still comes in batches.
"""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext

# How long the second fetch may linger when nothing else is waiting.
DRAIN_SECONDS = 0.002


async def fetch_ready(
    sub: JetStreamContext.PullSubscription, batch: int, wait: float, linger: float = 0.0
) -> list[Msg]:
    """One message or more (up to `batch`); raises nats' TimeoutError when none came within
    `wait` seconds. With `linger`, the first message waits that long for others to join it:
    a consumer whose work is cheaper by the batch (one write for many events) trades that
    much latency for fewer, larger batches."""
    msgs = list(await sub.fetch(1, timeout=wait))
    if batch > 1:
        if linger > 0:
            await asyncio.sleep(linger)
        with contextlib.suppress(NatsTimeoutError, TimeoutError):
            msgs += await sub.fetch(batch - 1, timeout=DRAIN_SECONDS)
    return msgs
