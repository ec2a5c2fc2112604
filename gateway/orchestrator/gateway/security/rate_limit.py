"""Per-key rate limits: a token bucket per key in Redis, shared by every gateway replica.

Each request takes one token; a bucket holds at most `burst` and refills at `rate` per second.
One Lua script reads, refills, takes and stores the bucket atomically on Redis's own clock: one
round trip per request, and replicas cannot drift apart.

When Redis cannot be reached the limiter fails open: requests pass unlimited (keys are still
checked) and a warning is logged at most every 30 s; Redis is not tried again for 5 s, so an
outage does not add a timeout to every request. Refusing all traffic because a counter is
unavailable would turn a Redis outage into an API outage.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

_PREFIX = "orch:gateway:ratelimit:"
_RETRY_REDIS_AFTER_SECONDS = 5.0
_WARN_EVERY_SECONDS = 30.0

# KEYS[1]: the bucket. ARGV: rate (tokens/s), burst. Returns {allowed, tokens, wait seconds}.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, tostring(tokens), tostring(wait)}
"""


@dataclass(frozen=True)
class Quota:
    """The outcome of one request against its key's bucket."""

    allowed: bool
    limit: int  # the burst: requests possible at once
    remaining: int
    reset_seconds: int  # until the bucket is full again
    retry_after_seconds: int  # until the next request would pass (0 when allowed)

    def headers(self) -> list[tuple[bytes, bytes]]:
        found = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset_seconds).encode()),
        ]
        if not self.allowed:
            found.append((b"retry-after", str(self.retry_after_seconds).encode()))
        return found


def quota_of(allowed: bool, tokens: float, wait: float, rate: float, burst: int) -> Quota:
    return Quota(
        allowed=allowed,
        limit=burst,
        remaining=max(0, math.floor(tokens)),
        reset_seconds=math.ceil((burst - tokens) / rate) if rate > 0 else 0,
        retry_after_seconds=0 if allowed else max(1, math.ceil(wait)),
    )


class RateLimiter(Protocol):
    async def take(self, key_id: str, rate: float, burst: int) -> Quota | None:
        """One request of `key_id`; None when it cannot be counted (fails open)."""
        ...


class RedisRateLimiter:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._script = redis.register_script(_TAKE)
        self._skip_until = 0.0
        self._warned_at = -math.inf

    async def take(self, key_id: str, rate: float, burst: int) -> Quota | None:
        now = time.monotonic()
        if now < self._skip_until:
            return None
        try:
            allowed, tokens, wait = await self._script(keys=[_PREFIX + key_id], args=[rate, burst])
        except (RedisError, OSError) as exc:
            self._skip_until = now + _RETRY_REDIS_AFTER_SECONDS
            if now - self._warned_at >= _WARN_EVERY_SECONDS:
                self._warned_at = now
                log.warning("rate limits not enforced: Redis unavailable (%s)", exc)
            return None
        return quota_of(bool(allowed), float(tokens), float(wait), rate, burst)
