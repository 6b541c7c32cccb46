"""Per-judge limits that hold across every worker: concurrent requests and requests per minute.

With Redis (TANDEM_REDIS_URL, or a redis:// Celery broker) both live in Redis, updated by Lua
scripts, so every worker process and thread shares one budget per judge:
- concurrency: a sorted set of slot holders scored by when their claim lapses (a worker that dies
  holding a slot loses it after `slot_ttl()` seconds instead of leaking it forever);
- requests per minute: a token bucket refilled continuously at rpm/60 per second, holding at
  most one second's worth, so requests are spread over the minute instead of sent in a burst.
Without Redis (the embedded `make run` setup: one worker process) the same two limits are kept
in the process, shared by all its threads.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator

from django.conf import settings

POLL = 0.05  # how soon a slot freed by another process or event loop is noticed; ours wake at once


def slot_ttl() -> float:
    """How long a slot outlives a worker that died holding it: longer than any one attempt may take."""
    return settings.TANDEM_JUDGE_TIMEOUT * 2 + 30


def _namespace() -> str:
    # Judges are numbered per database: two databases on one Redis must not share their budgets.
    database = settings.DATABASES["default"]
    return f"tandem:{database.get('HOST') or 'local'}:{database.get('PORT') or ''}:{database['NAME']}"


_ACQUIRE = """
local slots, bucket = KEYS[1], KEYS[2]
local holder, limit, rpm, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
if redis.call('ZCARD', slots) >= limit then return -1 end
local rate = rpm / 60.0
local capacity = math.max(1.0, rate)
local state = redis.call('HMGET', bucket, 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + (now - at) * rate)
if tokens < 1.0 then
  redis.call('HSET', bucket, 'tokens', tokens, 'at', now)
  return math.ceil((1.0 - tokens) / rate * 1000)
end
redis.call('HSET', bucket, 'tokens', tokens - 1.0, 'at', now)
redis.call('EXPIRE', bucket, 120)
redis.call('ZADD', slots, now + ttl, holder)
redis.call('EXPIRE', slots, math.ceil(ttl) + 60)
return 0
"""


def redis_url() -> str | None:
    url = getattr(settings, "TANDEM_REDIS_URL", "") or ""
    if url:
        return url
    broker = settings.CELERY_BROKER_URL or ""
    return broker if broker.startswith(("redis://", "rediss://")) else None


class _Wakeups:
    """Hands a slot released in this event loop to the longest waiter at once (one waiter, no herd)."""

    def __init__(self) -> None:
        self.waiters: dict[int, collections.deque[asyncio.Future]] = collections.defaultdict(collections.deque)

    async def wait(self, judge_id: int, timeout: float) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self.waiters[judge_id].append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            pass
        finally:
            with contextlib.suppress(ValueError):
                self.waiters[judge_id].remove(waiter)

    def wake(self, judge_id: int) -> None:
        queue = self.waiters.get(judge_id)
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


class RedisLimiter:
    """Concurrency slots and a token bucket per judge, in Redis (one event loop per instance)."""

    def __init__(self, url: str):
        import redis.asyncio

        # A run has many requests waiting for a slot at once; they queue for a connection, never fail.
        pool = redis.asyncio.BlockingConnectionPool.from_url(url, max_connections=16, timeout=None)
        self.client = redis.asyncio.Redis(connection_pool=pool)
        self.acquire_script = self.client.register_script(_ACQUIRE)
        self.wakeups = _Wakeups()
        self.gates: dict[int, asyncio.Lock] = collections.defaultdict(asyncio.Lock)

    @contextlib.asynccontextmanager
    async def slot(self, *, judge_id: int, concurrency: int, rpm: int) -> AsyncIterator[None]:
        prefix = f"{_namespace()}:judge:{judge_id}"
        keys = [f"{prefix}:slots", f"{prefix}:bucket"]
        ttl = slot_ttl()
        holder = uuid.uuid4().hex
        # One coroutine per event loop asks Redis at a time; the rest wait here without a round trip.
        async with self.gates[judge_id]:
            while True:
                now = time.time()
                wait_ms = int(await self.acquire_script(keys=keys, args=[holder, concurrency, rpm, now, ttl]))
                if wait_ms == 0:
                    break
                if wait_ms < 0:  # every slot taken: until one of ours is released, or another process's may be
                    await self.wakeups.wait(judge_id, POLL)
                else:  # the bucket is empty: wait for the next token
                    await asyncio.sleep(min(wait_ms / 1000, 1.0))
        try:
            yield
        finally:
            await self.client.zrem(keys[0], holder)
            self.wakeups.wake(judge_id)

    async def close(self) -> None:
        await self.client.aclose()


class _LocalState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight: dict[int, int] = {}
        self.buckets: dict[int, tuple[float, float]] = {}

    def try_acquire(self, judge_id: int, concurrency: int, rpm: int) -> float | None:
        """0 when a slot was taken; None when all are taken; else how long until the next token (seconds)."""
        with self.lock:
            if self.in_flight.get(judge_id, 0) >= concurrency:
                return None
            rate = rpm / 60.0
            capacity = max(1.0, rate)
            now = time.monotonic()
            tokens, at = self.buckets.get(judge_id, (capacity, now))
            tokens = min(capacity, tokens + (now - at) * rate)
            if tokens < 1.0:
                self.buckets[judge_id] = (tokens, now)
                return (1.0 - tokens) / rate
            self.buckets[judge_id] = (tokens - 1.0, now)
            self.in_flight[judge_id] = self.in_flight.get(judge_id, 0) + 1
            return 0.0

    def release(self, judge_id: int) -> None:
        with self.lock:
            self.in_flight[judge_id] -= 1


_LOCAL = _LocalState()


class LocalLimiter:
    """The same limits for one worker process (all its threads), when there is no Redis."""

    def __init__(self) -> None:
        self.wakeups = _Wakeups()

    @contextlib.asynccontextmanager
    async def slot(self, *, judge_id: int, concurrency: int, rpm: int) -> AsyncIterator[None]:
        while (wait := _LOCAL.try_acquire(judge_id, concurrency, rpm)) != 0:
            if wait is None:
                await self.wakeups.wait(judge_id, POLL)
            else:
                await asyncio.sleep(min(wait, 1.0))
        try:
            yield
        finally:
            _LOCAL.release(judge_id)
            self.wakeups.wake(judge_id)

    async def close(self) -> None:
        return None


def limiter_for_loop() -> RedisLimiter | LocalLimiter:
    """A limiter for the running event loop: Redis when configured, else this process's own."""
    url = redis_url()
    return RedisLimiter(url) if url else LocalLimiter()
