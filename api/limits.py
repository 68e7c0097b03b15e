"""Token buckets for rate limits: in this process's memory by default, in Redis when several
API processes must share them.

A bucket holds up to `burst` tokens and refills at `rate` per second; a request takes one.
When it is empty the caller is told how long until the next token (the Retry-After).
Clocks are passed in, so tests move time instead of sleeping.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Protocol

PREFIX = "neuron:rate:"


@dataclass(frozen=True)
class Bucket:
    """A bucket's shape: sustained rate (tokens per second) and burst (capacity)."""

    rate: float
    burst: int


class RateLimiter(Protocol):
    """Where buckets live."""

    def take(self, key: str, bucket: Bucket, now: float, *, consume: bool = True) -> float:
        """0.0 if a token was there (taken unless `consume` is False), else seconds until one is."""
        ...

    def give_back(self, key: str, bucket: Bucket) -> None:
        """Return a token taken for a request that turned out to be a replay (issue 17)."""
        ...


def retry_after(wait: float) -> str:
    """A Retry-After value: whole seconds, at least one."""
    return str(max(1, math.ceil(wait)))


class MemoryBuckets:
    """Buckets in a dict guarded by a lock; bounded, because addresses are chosen by clients."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._state: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._shapes: dict[str, Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, bucket: Bucket, now: float, *, consume: bool = True) -> float:
        with self._lock:
            tokens, at = self._state.get(key, (float(bucket.burst), now))
            tokens = min(float(bucket.burst), tokens + max(0.0, now - at) * bucket.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / bucket.rate
            if consume and wait == 0.0:
                tokens -= 1
            if key not in self._state and len(self._state) >= self.max_keys:
                self._forget_full(now)
            self._state[key] = (tokens, now)
            self._shapes[key] = bucket
            return wait

    def give_back(self, key: str, bucket: Bucket) -> None:
        with self._lock:
            if key in self._state:
                tokens, at = self._state[key]
                self._state[key] = (min(float(bucket.burst), tokens + 1), at)

    def _forget_full(self, now: float) -> None:
        # A bucket that has refilled is the same as no bucket: dropping it changes nothing.
        for key, (tokens, at) in list(self._state.items()):
            shape = self._shapes[key]
            if tokens + (now - at) * shape.rate >= shape.burst:
                del self._state[key], self._shapes[key]


# Atomic in Redis: read, refill, take, write back. Numbers go back as strings because Redis
# truncates Lua numbers to integers.
_TAKE = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens < 1 then wait = (1 - tokens) / rate elseif ARGV[4] == '1' then tokens = tokens - 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


_GIVE_BACK = """
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
if tokens then redis.call('HSET', KEYS[1], 'tokens', tostring(math.min(tonumber(ARGV[1]), tokens + 1))) end
return 0
"""


class RedisBuckets:
    """Buckets in Redis, shared by every API process that uses the same server."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._script = client.register_script(_TAKE)
        self._give_back = client.register_script(_GIVE_BACK)

    def take(self, key: str, bucket: Bucket, now: float, *, consume: bool = True) -> float:
        args = [repr(bucket.rate), bucket.burst, repr(now), "1" if consume else "0"]
        return float(self._script(keys=[PREFIX + key], args=args))

    def give_back(self, key: str, bucket: Bucket) -> None:
        self._give_back(keys=[PREFIX + key], args=[bucket.burst])
