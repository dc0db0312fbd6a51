"""Garbage collection on demand and by itself when the store crosses its cap.

``GarbageCollector.collect`` wraps the store's LRU eviction and sweep with
what operations need around it: a tombstone for every evicted entry (so the
next miss on those inputs says ``evicted``) and the metrics. ``AutoCollector``
is the daemon's background task: it checks the store's size every interval
(sooner after a build stored bytes) and, above the cap, collects down to the
low watermark in a worker thread. Builds never wait for it: the store's
collector protects what running builds and recent hits use (ingest horizon,
leases, grace), and the event loop only awaits the thread.
"""

from __future__ import annotations

import asyncio
import logging
import time

from cached.operate.metrics import BuildMetrics
from cached.store import Removed, Store, Tombstones
from cached.store.collect import LOW_WATERMARK, CollectReport
from cached.store.collect import Held as Held  # what a collection could not free yet, re-exported for the Admin servicer

log = logging.getLogger("cached.operate.gc")


class GarbageCollector:
    def __init__(self, store: Store, tombstones: Tombstones, metrics: BuildMetrics) -> None:
        self.store = store
        self.tombstones = tombstones
        self.metrics = metrics

    def collect(self, max_bytes: int | None, *, dry_run: bool = False, trigger: str = "manual") -> CollectReport:
        """Blocking: run it in a thread. Evicts LRU entries until what is left fits 90 % of max_bytes, then sweeps."""
        owners = {} if dry_run or max_bytes is None else {(e.kind, e.key): e.owner for e in self.store.iter_roots()}
        report = self.store.collect(max_bytes, dry_run=dry_run)
        if not dry_run:
            if report.evicted:
                removed = [Removed(kind, key, owners.get((kind, key), "")) for kind, key in report.evicted]
                self.tombstones.record(removed, "evicted").result()
            self.metrics.observe_gc(trigger, report.evicted, report.bytes_freed)
        log.info("garbage collection", extra={
            "trigger": trigger, "max_bytes": max_bytes, "dry_run": dry_run, "roots_evicted": report.roots_evicted,
            "bytes_freed": report.bytes_freed, "bytes_after": report.bytes_after, "seconds": round(report.seconds, 3),
        })
        return report


class AutoCollector:
    """Keeps the store under ``max_bytes``: above it, collects down to ``low_watermark`` of it."""

    def __init__(self, store: Store, gc: GarbageCollector, *, max_bytes: int, low_watermark: float = LOW_WATERMARK,
                 interval_s: float = 60.0, min_gap_s: float | None = None) -> None:
        self.store = store
        self.gc = gc
        self.max_bytes = max_bytes
        # The store's collect(m) evicts down to LOW_WATERMARK * m: aim it at our low watermark.
        self.collect_arg = int(max_bytes * low_watermark / LOW_WATERMARK)
        self.interval_s = interval_s
        self.min_gap_s = min(interval_s, 5.0) if min_gap_s is None else min_gap_s
        self.runs = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.max_bytes > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="cached-autocollect")

    def nudge(self) -> None:
        """A build stored bytes: check soon rather than at the next interval. Call from the event loop."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            started = time.monotonic()
            gap = self.min_gap_s
            try:
                report = await self.check()
                if report is not None and report.bytes_after > self.max_bytes:
                    # Still over: what is left is in use (leases, running builds). Nudges would only
                    # rescan the store; wait a whole interval for those protections to run out.
                    log.warning("store still over its cap after collecting", extra={"bytes": report.bytes_after, "max_bytes": self.max_bytes})
                    gap = self.interval_s
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a failed collection is retried at the next check
                log.exception("automatic garbage collection failed")
            await asyncio.sleep(max(0.0, gap - (time.monotonic() - started)))  # a nudge meanwhile checks right after

    async def check(self) -> CollectReport | None:
        """Collects when the store is over its cap; returns the report, or None when under it."""
        size = (await asyncio.to_thread(self.store.stats)).bytes
        if size <= self.max_bytes:
            return None
        log.info("store over its cap", extra={"bytes": size, "max_bytes": self.max_bytes})
        self.runs += 1
        return await asyncio.to_thread(self.gc.collect, self.collect_arg, trigger="auto")
