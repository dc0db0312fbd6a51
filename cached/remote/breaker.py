"""A circuit breaker, so a bucket that is down costs builds nothing.

After ``threshold`` consecutive failures (connection refused, a timeout, a
5xx, a refused credential) the breaker opens: for ``cooldown_s`` seconds every
remote read is an immediate miss and every queued write is dropped, without
touching the network. Then one call is let through as a probe (half open):
its success closes the breaker, its failure opens it for another cooldown.
A "not found" is a success: the bucket answered.

Shared by readers and the writer threads; every method is thread-safe and
O(1). Each ``allow()`` that returns True must be followed by ``success()`` or
``failure()``, or a probe would stay in flight forever.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    def __init__(self, threshold: int = 5, cooldown_s: float = 30.0, *, clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[str], None] | None = None) -> None:
        if threshold < 1 or cooldown_s < 0:
            raise ValueError("circuit breaker: threshold >= 1 and cooldown >= 0")
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0
        self._state = CLOSED
        self._probing = False
        self.opened = 0  # how many times it opened, for tests and stats

    @property
    def state(self) -> str:
        with self._lock:
            if self._state == OPEN and self._clock() >= self._open_until:
                return HALF_OPEN
            return self._state

    def allow(self) -> bool:
        """Whether to try the bucket now."""
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._probing or self._clock() < self._open_until:
                return False
            self._probing = True
            self._state = HALF_OPEN
            return True

    def success(self) -> None:
        with self._lock:
            changed = self._state != CLOSED
            self._failures = 0
            self._probing = False
            self._state = CLOSED
        if changed:
            self._notify(CLOSED)

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._probing = False
            opening = self._state == HALF_OPEN or (self._state == CLOSED and self._failures >= self.threshold)
            if opening:
                self._state = OPEN
                self._open_until = self._clock() + self.cooldown_s
                self.opened += 1
        if opening:
            self._notify(OPEN)

    def _notify(self, state: str) -> None:
        if self._on_change is not None:
            self._on_change(state)
