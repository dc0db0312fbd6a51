"""The event loop's lag: how late a short timer fires, as a metric.

Hits, uploads, reads and admin calls share the daemon's one event loop, so
anything slow run on it (a file read, a scan of the index) delays them all;
here it shows as lag (``cached_event_loop_lag_seconds`` and the worst since
start). This module must never do work of its own on the loop beyond reading
the clock.
"""

from __future__ import annotations

import asyncio
import contextlib

from cached.operate.metrics import BuildMetrics

INTERVAL_S = 0.025


class LoopLag:
    def __init__(self, metrics: BuildMetrics, interval_s: float = INTERVAL_S) -> None:
        self.metrics = metrics
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="cached-loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.interval_s)
            self.metrics.observe_loop_lag(max(0.0, loop.time() - started - self.interval_s))
