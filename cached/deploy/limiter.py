"""A sliding-window limiter: at most N API calls per window, shared by every deploy of the daemon.

Cloudflare allows 1,200 requests per 5 minutes per token. ``RateLimiters``
holds one limiter per token; the daemon's composition root creates one set
and hands it to the deployer, so every API client of the daemon that uses a
token shares its limiter and parallel deploys together stay under the limit:
a caller waits for a slot instead of being answered 429. This module keeps
no state of its own (no process-wide registry).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import Awaitable, Callable

REQUESTS = 1200
WINDOW_S = 300.0


class RateLimiter:
    def __init__(
        self, limit: int = REQUESTS, window_s: float = WINDOW_S, *,
        clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._sleep = sleep  # with ``clock``, lets a test run the window on a clock of its own
        self._sent: deque[float] = deque()
        self.waits = 0  # how often a caller had to wait (a figure for logs and tests)

    async def acquire(self) -> None:
        """Waits for a slot. No lock: nothing awaits between the check and the append (one event loop)."""
        while True:
            now = self._clock()
            while self._sent and now - self._sent[0] >= self.window_s:
                self._sent.popleft()
            if len(self._sent) < self.limit:
                self._sent.append(now)
                return
            self.waits += 1
            await self._sleep(self._sent[0] + self.window_s - now)

    def in_window(self) -> int:
        now = self._clock()
        return sum(1 for t in self._sent if now - t < self.window_s)


class RateLimiters:
    """One limiter per API token, keyed by the token's hash (never the token itself)."""

    def __init__(self, limit: int = REQUESTS, window_s: float = WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._by_token: dict[str, RateLimiter] = {}

    def for_token(self, token: str) -> RateLimiter:
        key = hashlib.sha256(token.encode()).hexdigest()
        limiter = self._by_token.get(key)
        if limiter is None:
            limiter = self._by_token[key] = RateLimiter(self.limit, self.window_s)
        return limiter
