"""Rate limits on logins (per client address) and exports (per user): a sliding-window log in process.

Password guessing is slowed by the lock-out rule per account; this limit slows guessing across many
accounts from one address, and stops one user from draining the store through repeated bulk exports.
One limiter lives on ``app.state.rate_limiter`` (per process: a server with several worker processes
allows the limit in each). The clock is injectable so tests need not sleep.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fastapi import Request

from narcotrack.config import Settings
from narcotrack.errors import RateLimited

SWEEP_EVERY = 1024  # calls between sweeps of keys with no hit inside their window (bounds memory)

MESSAGES = {
    "login": "too many login attempts from your address: at most {count} a minute; try again in {wait} seconds",
    "export": "too many exports: at most {count} a minute; try again in {wait} seconds",
}


@dataclass(frozen=True)
class Limit:
    """At most ``count`` accepted hits in any ``window`` seconds; ``count`` <= 0 switches the limit off."""

    count: int
    window: float = 60.0


class RateLimiter:
    """Thread-safe sliding-window log: remembers the times of accepted hits per (bucket, key)."""

    def __init__(self, limits: Mapping[str, Limit], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = dict(limits)
        self._clock = clock
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()
        self._calls = 0

    def hit(self, bucket: str, key: str) -> float:
        """Count one request; 0.0 if it is allowed, else the seconds until the next one would be."""
        limit = self.limits[bucket]
        if limit.count <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            self._calls += 1
            if self._calls % SWEEP_EVERY == 0:
                self._sweep(now)
            times = self._hits.setdefault((bucket, key), deque())
            while times and times[0] <= now - limit.window:
                times.popleft()
            if len(times) >= limit.count:
                return max(times[0] + limit.window - now, 0.001)
            times.append(now)
            return 0.0

    def _sweep(self, now: float) -> None:
        stale = [k for k, times in self._hits.items() if not times or times[-1] <= now - self.limits[k[0]].window]
        for k in stale:
            del self._hits[k]

    def tracked_keys(self) -> int:
        with self._lock:
            return len(self._hits)


def limiter_for(settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> RateLimiter:
    """The application's limiter with the limits from the settings."""
    return RateLimiter({"login": Limit(settings.login_rate_per_minute),
                        "export": Limit(settings.export_rate_per_minute)}, clock=clock)


def check(request: Request, bucket: str, key: str) -> None:
    """Count this request against ``bucket`` for ``key``; raise RateLimited (429, Retry-After) when over."""
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = limiter.hit(bucket, key)
    if wait:
        seconds = max(1, math.ceil(wait))
        raise RateLimited(MESSAGES[bucket].format(count=limiter.limits[bucket].count, wait=seconds), seconds)
