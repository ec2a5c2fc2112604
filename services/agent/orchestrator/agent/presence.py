"""Live facts about agents in Redis: liveness with a TTL, the task slots they hold, a lock.

Per agent: `orch:agent:<id>:alive` (the last heartbeat in ms, "0" before the first; expires
after the TTL), `:reported` (the task ids its worker last reported) and `:reserved` (task id ->
`p<ms>` pending or `s<ms>` seen in a heartbeat, ms = when RouteTask reserved it). Shared:
`orch:agent:load` (agent -> its current task ids, space separated: reported and reserved),
`orch:agent:owners` (task -> the agent holding its reservation), `orch:agent:beats` (agent ->
its last heartbeat, kept while it is OFFLINE so its age can be shown) and
`orch:agent:deadlines` (agent -> when its liveness runs out, what the offline sweeper scans) and
`orch:agent:swept` (when a sweep last ran, in ms).

Every change runs as one Lua script, so routes racing for an agent's last slot on different
replicas are serialised by Redis and cannot both win. Scripts use Redis's clock, never the
replicas'. Keys are built inside the scripts: this needs one Redis, not a cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from redis.asyncio import Redis

PREFIX = "orch:agent:"
LOAD = PREFIX + "load"
# Present while Redis still holds what the sweeper armed; gone after a restart or a flush.
ARMED = PREFIX + "armed"
BEATS = PREFIX + "beats"
DEADLINES = PREFIX + "deadlines"

_LIB = """
local P, LOAD, OWNERS = 'orch:agent:', 'orch:agent:load', 'orch:agent:owners'
local DEADLINES, BEATS = 'orch:agent:deadlines', 'orch:agent:beats'
local SWEPT = 'orch:agent:swept'
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function current(agent)
  local ids = redis.call('SMEMBERS', P .. agent .. ':reported')
  local seen = {}
  for _, t in ipairs(ids) do seen[t] = true end
  for _, t in ipairs(redis.call('HKEYS', P .. agent .. ':reserved')) do
    if not seen[t] then seen[t] = true; table.insert(ids, t) end
  end
  table.sort(ids)
  return ids
end
-- Stores the agent's current ids; returns the previous and the new value.
local function store(agent)
  local before = redis.call('HGET', LOAD, agent) or ''
  local after = table.concat(current(agent), ' ')
  if after == '' then
    redis.call('HDEL', LOAD, agent)
  else
    redis.call('HSET', LOAD, agent, after)
  end
  return before, after
end
"""

# ARGV: agent, ttl ms, task ids... -> {now ms, previous, current}
_BEAT = """
local agent, ttl = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
redis.call('SET', P .. agent .. ':alive', now, 'PX', ttl)
redis.call('ZADD', DEADLINES, now + ttl, agent)
redis.call('HSET', BEATS, agent, now)
local rep, res = P .. agent .. ':reported', P .. agent .. ':reserved'
redis.call('DEL', rep)
local reported = {}
for i = 3, #ARGV do redis.call('SADD', rep, ARGV[i]); reported[ARGV[i]] = true end
-- A reservation the worker reported once and reports no more was finished or dropped by it.
local entries = redis.call('HGETALL', res)
for i = 1, #entries, 2 do
  local task, state = entries[i], entries[i + 1]
  if reported[task] then
    redis.call('HSET', res, task, 's' .. string.sub(state, 2))
  elseif string.sub(state, 1, 1) == 's' then
    redis.call('HDEL', res, task)
    if redis.call('HGET', OWNERS, task) == agent then redis.call('HDEL', OWNERS, task) end
  end
end
local before, after = store(agent)
return {now, before, after}
"""

# ARGV: agent, ttl ms -> now ms. Liveness until the first heartbeat is due; not a heartbeat.
_ARM = """
local now = now_ms()
redis.call('SET', P .. ARGV[1] .. ':alive', 0, 'PX', tonumber(ARGV[2]))
redis.call('ZADD', DEADLINES, now + tonumber(ARGV[2]), ARGV[1])
return now
"""

# ARGV: agent, task, max
#   -> {now, outcome, previous, current, moved from, its previous, its current}
# outcome 1 reserved (or held already), 0 full, -1 not alive.
_RESERVE = """
local agent, task, max = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = now_ms()
local held = redis.call('HGET', LOAD, agent) or ''
if redis.call('EXISTS', P .. agent .. ':alive') == 0 then
  return {now, -1, held, held, '', '', ''}
end
local owner = redis.call('HGET', OWNERS, task)
if owner == agent or redis.call('SISMEMBER', P .. agent .. ':reported', task) == 1 then
  return {now, 1, held, held, '', '', ''}
end
if #current(agent) >= max then return {now, 0, held, held, '', '', ''} end
redis.call('HSET', P .. agent .. ':reserved', task, 'p' .. now)
redis.call('HSET', OWNERS, task, agent)
local moved, moved_before, moved_after = '', '', ''
if owner then
  -- A task holds one slot: routing it again moves its reservation.
  redis.call('HDEL', P .. owner .. ':reserved', task)
  moved = owner
  moved_before, moved_after = store(owner)
end
local before, after = store(agent)
return {now, 1, before, after, moved, moved_before, moved_after}
"""

# ARGV: agent, tasks... -> {now, previous, current}. The tasks ended on this agent (their results
# were recorded).
_FINISH = """
local agent = ARGV[1]
for i = 2, #ARGV do
  local task = ARGV[i]
  redis.call('SREM', P .. agent .. ':reported', task)
  redis.call('HDEL', P .. agent .. ':reserved', task)
  if redis.call('HGET', OWNERS, task) == agent then redis.call('HDEL', OWNERS, task) end
end
local before, after = store(agent)
return {now_ms(), before, after}
"""

# ARGV: task, not after ms -> {now, agent, previous, current}, or {} when nothing was released.
# A reservation made after the releasing event happened belongs to a newer route: kept.
_RELEASE = """
local task, not_after = ARGV[1], tonumber(ARGV[2])
local owner = redis.call('HGET', OWNERS, task)
if not owner then return {} end
local state = redis.call('HGET', P .. owner .. ':reserved', task)
if state and tonumber(string.sub(state, 2)) > not_after then return {} end
redis.call('HDEL', P .. owner .. ':reserved', task)
redis.call('SREM', P .. owner .. ':reported', task)
redis.call('HDEL', OWNERS, task)
local before, after = store(owner)
return {now_ms(), owner, before, after}
"""

# ARGV: agent, forget. Drops the liveness and slots of an agent that went OFFLINE or
# DEREGISTERED; forget = '1' (DEREGISTERED) drops its last heartbeat too.
_CLEAR = """
local agent = ARGV[1]
if ARGV[2] == '1' then redis.call('HDEL', BEATS, agent) end
for _, task in ipairs(redis.call('HKEYS', P .. agent .. ':reserved')) do
  if redis.call('HGET', OWNERS, task) == agent then redis.call('HDEL', OWNERS, task) end
end
redis.call('DEL', P .. agent .. ':alive', P .. agent .. ':reported', P .. agent .. ':reserved')
redis.call('HDEL', LOAD, agent)
redis.call('ZREM', DEADLINES, agent)
return now_ms()
"""

# ARGV: limit, blind ms, grace ms -> {0, agents whose deadline passed and whose liveness key is
# gone...}. When no sweep ran for longer than `blind ms` (Redis or every sweeper was down), a
# lapsed deadline says nothing of its agent: heartbeats could not land either. Then every
# deadline passed or near gets `grace ms` from now instead, nobody expires on this sweep, and
# the reply is {ms since the last sweep} ({-1} for the first sweep this Redis has seen).
_EXPIRED = """
local now = now_ms()
local last = tonumber(redis.call('GET', SWEPT) or '0')
redis.call('SET', SWEPT, now)
local gap = -1
if last > 0 then gap = now - last end
if gap < 0 or gap > tonumber(ARGV[2]) then
  local until_ms = now + tonumber(ARGV[3])
  for _, agent in ipairs(redis.call('ZRANGEBYSCORE', DEADLINES, '-inf', until_ms)) do
    redis.call('ZADD', DEADLINES, until_ms, agent)
  end
  return {gap}
end
local out = {0}
for _, agent in ipairs(redis.call('ZRANGEBYSCORE', DEADLINES, '-inf', now, 'LIMIT', 0, ARGV[1])) do
  local left = redis.call('PTTL', P .. agent .. ':alive')
  if left < 0 then
    table.insert(out, agent)
  else
    redis.call('ZADD', DEADLINES, now + left, agent)
  end
end
return out
"""

# ARGV: ttl ms, agents... Watches live agents Redis forgot (a restart): they expire unless they
# heart-beat within the TTL.
_WATCH = """
local deadline = now_ms() + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', DEADLINES, 'NX', deadline, ARGV[i]) end
return #ARGV - 1
"""

_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _ids(value: Any) -> tuple[str, ...]:
    text = value.decode() if isinstance(value, bytes) else str(value or "")
    return tuple(text.split()) if text else ()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def _moment(ms: int) -> datetime:
    """Exact to the millisecond, so stamps compare equal after a round trip through events."""
    return datetime.fromtimestamp(ms // 1000, UTC) + timedelta(milliseconds=ms % 1000)


@dataclass(frozen=True, slots=True)
class Slots:
    """An agent's current task ids before and after one change made at `at` (Redis's clock,
    the one order every replica agrees on)."""

    agent_id: str
    previous: tuple[str, ...]
    current: tuple[str, ...]
    at: datetime

    @property
    def changed(self) -> bool:
        return self.previous != self.current


@dataclass(frozen=True, slots=True)
class Expiry:
    """What one sweep found: the agents whose liveness ran out, or, after a spell without
    sweeps, none and how long that spell was (`blind_ms`: ms since the last sweep, -1 when
    this Redis had seen none; 0 when there was no such spell)."""

    agents: list[str]
    blind_ms: int


@dataclass(frozen=True, slots=True)
class Beat:
    at: datetime
    slots: Slots


@dataclass(frozen=True, slots=True)
class Facts:
    """Per agent: current task ids and last heartbeat (absent before the first), read at `at`."""

    at: datetime
    tasks: dict[str, tuple[str, ...]]
    beats: dict[str, datetime]


@dataclass(frozen=True, slots=True)
class Reservation:
    """`reserved` False: `full` says the agent had no free slot, else it is not alive."""

    reserved: bool
    full: bool
    slots: Slots
    moved: Slots | None = None


class Presence(Protocol):
    async def beat(self, agent_id: str, ttl_ms: int, task_ids: Sequence[str]) -> Beat: ...
    async def arm(self, agent_id: str, ttl_ms: int) -> None: ...
    async def reserve(self, agent_id: str, task_id: str, max_tasks: int) -> Reservation: ...
    async def finish(self, agent_id: str, task_ids: Sequence[str]) -> Slots: ...
    async def release(self, task_id: str, not_after: datetime) -> Slots | None: ...
    async def clear(self, agent_id: str, *, forget: bool = False) -> datetime: ...
    async def is_alive(self, agent_id: str) -> bool: ...
    async def expired(self, limit: int, blind_ms: int, grace_ms: int) -> Expiry: ...
    async def watch(self, agent_ids: Sequence[str], ttl_ms: int) -> None: ...
    async def live_facts(self, agent_ids: Sequence[str]) -> Facts: ...
    async def all_loads(self) -> Facts: ...
    async def lock(self, name: str, token: str, ttl_ms: int) -> bool: ...
    async def unlock(self, name: str, token: str) -> None: ...
    async def needs_rearming(self) -> bool: ...
    async def rearmed(self) -> None: ...


class RedisPresence:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._beat = redis.register_script(_LIB + _BEAT)
        self._arm = redis.register_script(_LIB + _ARM)
        self._reserve = redis.register_script(_LIB + _RESERVE)
        self._finish = redis.register_script(_LIB + _FINISH)
        self._release = redis.register_script(_LIB + _RELEASE)
        self._clear = redis.register_script(_LIB + _CLEAR)
        self._expired = redis.register_script(_LIB + _EXPIRED)
        self._watch = redis.register_script(_LIB + _WATCH)
        self._unlock = redis.register_script(_UNLOCK)

    async def beat(self, agent_id: str, ttl_ms: int, task_ids: Sequence[str]) -> Beat:
        now, before, after = await self._beat(args=[agent_id, ttl_ms, *task_ids])
        at = _moment(int(now))
        return Beat(at, Slots(agent_id, _ids(before), _ids(after), at))

    async def arm(self, agent_id: str, ttl_ms: int) -> None:
        await self._arm(args=[agent_id, ttl_ms])

    async def reserve(self, agent_id: str, task_id: str, max_tasks: int) -> Reservation:
        now, outcome, before, after, moved, moved_before, moved_after = await self._reserve(
            args=[agent_id, task_id, max_tasks]
        )
        at = _moment(int(now))
        slots = Slots(agent_id, _ids(before), _ids(after), at)
        owner = _text(moved)
        moved_slots = Slots(owner, _ids(moved_before), _ids(moved_after), at) if owner else None
        return Reservation(int(outcome) == 1, int(outcome) == 0, slots, moved_slots)

    async def finish(self, agent_id: str, task_ids: Sequence[str]) -> Slots:
        now, before, after = await self._finish(args=[agent_id, *task_ids])
        return Slots(agent_id, _ids(before), _ids(after), _moment(int(now)))

    async def release(self, task_id: str, not_after: datetime) -> Slots | None:
        reply = await self._release(args=[task_id, int(not_after.timestamp() * 1000)])
        if not reply:
            return None
        now, owner, before, after = reply
        return Slots(_text(owner), _ids(before), _ids(after), _moment(int(now)))

    async def clear(self, agent_id: str, *, forget: bool = False) -> datetime:
        return _moment(int(await self._clear(args=[agent_id, "1" if forget else "0"])))

    async def is_alive(self, agent_id: str) -> bool:
        return bool(await self._redis.exists(f"{PREFIX}{agent_id}:alive"))

    async def expired(self, limit: int, blind_ms: int, grace_ms: int) -> Expiry:
        """Agents whose liveness ran out, at most `limit`; none, and every lapsed deadline
        moved `grace_ms` ahead, after more than `blind_ms` without a sweep."""
        reply = await self._expired(args=[limit, blind_ms, grace_ms])
        return Expiry([_text(a) for a in reply[1:]], int(reply[0]))

    async def watch(self, agent_ids: Sequence[str], ttl_ms: int) -> None:
        if agent_ids:
            await self._watch(args=[ttl_ms, *agent_ids])

    async def live_facts(self, agent_ids: Sequence[str]) -> Facts:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.time()
            if agent_ids:
                pipe.hmget(LOAD, list(agent_ids))
                pipe.hmget(BEATS, list(agent_ids))
            (seconds, micros), *rest = await pipe.execute()
        at = _moment(int(seconds) * 1000 + int(micros) // 1000)
        if not agent_ids:
            return Facts(at, {}, {})
        loads, beats = rest
        tasks = {a: _ids(v) for a, v in zip(agent_ids, loads, strict=True)}
        last = {a: _moment(int(v)) for a, v in zip(agent_ids, beats, strict=True) if v}
        return Facts(at, tasks, last)

    async def all_loads(self) -> Facts:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.time()
            pipe.hgetall(LOAD)
            (seconds, micros), raw = await pipe.execute()
        at = _moment(int(seconds) * 1000 + int(micros) // 1000)
        return Facts(at, {_text(k): _ids(v) for k, v in raw.items()}, {})

    async def lock(self, name: str, token: str, ttl_ms: int) -> bool:
        return bool(await self._redis.set(PREFIX + name, token, nx=True, px=ttl_ms))

    async def unlock(self, name: str, token: str) -> None:
        """Deletes the lock only if it is still ours: an expired one may be another's now."""
        await self._unlock(keys=[PREFIX + name], args=[token])

    async def needs_rearming(self) -> bool:
        """True when Redis lost its deadlines (restarted or flushed) since the last re-arming."""
        return not await self._redis.exists(ARMED)

    async def rearmed(self) -> None:
        await self._redis.set(ARMED, "1")
