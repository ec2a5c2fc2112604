"""The live event feed the WebSockets relay: a port, and its JetStream adapter.

Each follower gets its own ephemeral ordered push consumer on the event stream, starting at a
stream sequence, so a client that reconnects with the last sequence it saw misses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

log = logging.getLogger(__name__)

# A consumer left behind (gateway killed mid-stream) is removed by the server after this.
_INACTIVE_THRESHOLD_SECONDS = 30.0
_CLEANUP_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class StreamEvent:
    seq: int
    subject: str
    data: bytes


class EventFeed(Protocol):
    async def last_sequence(self) -> int:
        """The stream's newest sequence number (0 when empty)."""
        ...

    def follow(
        self, subjects: Sequence[str], start_seq: int
    ) -> AbstractAsyncContextManager[AsyncIterator[StreamEvent]]:
        """Events on any of `subjects` from `start_seq` on, in stream order, until exited."""
        ...


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: `*` is one token, a final `>` one or more."""
    wanted, actual = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(actual) > index
        if index >= len(actual) or token not in ("*", actual[index]):
            return False
    return len(wanted) == len(actual)


class JetStreamFeed:
    def __init__(self, js: JetStreamContext, stream: str) -> None:
        self._js = js
        self._stream = stream

    async def last_sequence(self) -> int:
        info = await self._js.stream_info(self._stream)
        return int(info.state.last_seq)

    @asynccontextmanager
    async def follow(
        self, subjects: Sequence[str], start_seq: int
    ) -> AsyncIterator[AsyncIterator[StreamEvent]]:
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(start_seq, 1),
            inactive_threshold=_INACTIVE_THRESHOLD_SECONDS,
        )
        if len(subjects) > 1:
            config.filter_subjects = list(subjects)  # one consumer, many filters: NATS ≥ 2.10
        subscription = await self._js.subscribe(
            subjects[0], stream=self._stream, config=config, ordered_consumer=True
        )
        try:
            yield self._events(subscription, subjects)
        finally:
            await self._remove(subscription)

    @staticmethod
    async def _events(subscription: Any, subjects: Sequence[str]) -> AsyncIterator[StreamEvent]:
        while True:
            msg = await subscription.next_msg(timeout=None)
            # A server older than 2.10 ignores filter_subjects and sends the whole stream.
            if not any(subject_matches(pattern, msg.subject) for pattern in subjects):
                continue
            yield StreamEvent(msg.metadata.sequence.stream, msg.subject, msg.data)

    async def _remove(self, subscription: Any) -> None:
        """Unsubscribes and deletes the consumer now rather than leaving it to the server."""
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
        try:
            async with asyncio.timeout(_CLEANUP_TIMEOUT_SECONDS):
                info = await subscription.consumer_info()
                await self._js.delete_consumer(self._stream, info.name)
        except Exception as exc:  # the inactive threshold removes it anyway
            log.debug("consumer cleanup skipped: %s", exc)
