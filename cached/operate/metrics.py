"""Prometheus metrics of the daemon, on its own registry, served over HTTP.

Everything is counted once per decision, in the build that made it: a hit is
one action hit however many blobs it names, and a build that joined an
identical running build (single flight) counts one ``coalesced`` lookup, not
the leader's miss and install a second time. Store size is read from the
store when Prometheus scrapes, so it is never stale and costs nothing between
scrapes. Per-app figures (hit rate, last build) stay in memory for ``Stats``:
app names as labels would grow without bound.

This module must never use prometheus_client's default registry (several
daemons share one process in tests), and never raise into a build: the
pipeline calls it after the result is decided.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cached.errors import BuildFailed, BuildTimeout, InvalidRequest, LimitExceeded, PreconditionFailed
from cached.v1 import cached_pb2

log = logging.getLogger("cached.operate.metrics")

HIT = cached_pb2.CacheDecision.HIT
MISS = cached_pb2.CacheDecision.MISS
COALESCED = cached_pb2.CacheDecision.COALESCED
RESULTS = {HIT: "hit", MISS: "miss", COALESCED: "coalesced"}
LAYERS = ("action", "deps", "vite", "blob")
ACTION_REASONS = (
    "new_app", "sources_changed", "deps_changed", "env_changed", "toolchain_changed", "config_changed",
    "evicted", "purged", "forced", "corrupt",
)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PHASE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0)


def counted_decisions(decisions: Sequence[cached_pb2.CacheDecision]) -> list[cached_pb2.CacheDecision]:
    """The decisions this build made itself, each with its final result.

    A layer that coalesced reports a miss and then ``coalesced``: only the
    latter counts. A build that coalesced on the action also received the
    leader's decisions (deps, vite) between its action miss and its
    ``coalesced``: those are the leader's, already counted there.
    """
    coalesced = {d.layer for d in decisions if d.result == COALESCED}
    out: list[cached_pb2.CacheDecision] = []
    borrowed = False
    for d in decisions:
        if d.layer == "action" and "action" in coalesced:
            if d.result == MISS:
                borrowed = True
                continue
            if d.result == COALESCED:
                borrowed = False
        elif borrowed:
            continue
        if d.result == MISS and d.layer in coalesced:
            continue
        out.append(d)
    return out


def error_kind(error: BaseException) -> str:
    for cls, name in ((BuildTimeout, "timeout"), (BuildFailed, "build_failed"), (InvalidRequest, "invalid_request"),
                      (LimitExceeded, "limit_exceeded"), (PreconditionFailed, "precondition_failed")):
        if isinstance(error, cls):
            return name
    return "internal"


@dataclass
class AppCounters:
    builds: int = 0
    action_hits: int = 0
    failed: int = 0
    last_build_unix_ms: int = 0


class StoreCollector(Collector):
    """Store bytes, blobs and entries, read when Prometheus scrapes."""

    def __init__(self, stats: Callable[[], Any]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        try:
            s = self.stats()
        except Exception:  # noqa: BLE001 - a closed store scrapes as nothing, never as an error page
            log.debug("store stats unavailable for a scrape", exc_info=True)
            return
        yield GaugeMetricFamily("cached_store_bytes", "Bytes of blobs in the store", value=s.bytes)
        yield GaugeMetricFamily("cached_store_blobs", "Blobs in the store", value=s.blobs)
        entries = GaugeMetricFamily("cached_store_entries", "Cache entries (roots) by kind", labels=["kind"])
        for kind, n in sorted(s.roots.items()):
            entries.add_metric([kind], n)
        yield entries


class BuildMetrics:
    """The daemon's counters and histograms, and the HTTP endpoint that serves them."""

    def __init__(self, store_stats: Callable[[], Any] | None = None) -> None:
        r = self.registry = CollectorRegistry()
        self.lookups = Counter("cached_lookups", "Cache decisions by layer, result (hit, miss, coalesced) and tier", ["layer", "result", "tier"], registry=r)
        self.misses = Counter("cached_misses", "Cache misses by layer and reason", ["layer", "reason"], registry=r)
        self.builds = Counter("cached_builds", "Builds answered, by cache result of the action", ["cache"], registry=r)
        self.builds_failed = Counter("cached_builds_failed", "Builds that failed, by kind of error", ["error"], registry=r)
        self.builds_cancelled = Counter("cached_builds_cancelled", "Builds whose caller went away before the result", registry=r)
        self.phase_seconds = Histogram("cached_phase_seconds", "Duration of each build phase", ["phase"], buckets=PHASE_BUCKETS, registry=r)
        self.build_seconds = Histogram("cached_build_seconds", "Duration of whole builds in the daemon", ["cache"], buckets=PHASE_BUCKETS, registry=r)
        self.bytes_restored = Counter("cached_bytes_restored", "Bytes the cache supplied instead of a build or install (hit outputs, deps trees)", registry=r)
        self.bytes_ingested = Counter("cached_bytes_ingested", "Bytes of build outputs stored", registry=r)
        self.evictions = Counter("cached_evictions", "Cache entries evicted by garbage collection", ["kind"], registry=r)
        self.gc_runs = Counter("cached_gc_runs", "Garbage collections, by what started them", ["trigger"], registry=r)
        self.gc_bytes_freed = Counter("cached_gc_bytes_freed", "Bytes the sweep reclaimed (garbage collection and purge)", registry=r)
        self.purged = Counter("cached_purged_entries", "Cache entries removed or hidden by purge, by selector", ["selector"], registry=r)
        self.corrupt_blobs = Counter("cached_verify_corrupt_blobs", "Corrupt blob files found by verify", registry=r)
        self.packages_reused = Counter("cached_packages_reused", "Packages laid out from the package store into a new dependency tree", registry=r)
        self.packages_fetched = Counter("cached_packages_fetched", "Packages fetched (registry or npm's cache) into the package store", registry=r)
        self.package_bytes_downloaded = Counter("cached_package_bytes_downloaded", "Tarball bytes the package store downloaded from the registry", registry=r)
        self.remote_errors = Counter("cached_remote_errors", "Errors talking to the shared tier (a miss, never a failed build)", ["op"], registry=r)
        self.loop_lag = Histogram("cached_event_loop_lag_seconds", "How late the event loop ran a short timer (work blocking the loop)", buckets=LAG_BUCKETS, registry=r)
        self.loop_lag_max = Gauge("cached_event_loop_lag_max_seconds", "The worst event-loop lag since the daemon started", registry=r)
        self.worst_loop_lag = 0.0
        for layer in LAYERS:
            for result in RESULTS.values():
                self.lookups.labels(layer, result, "local")
        for reason in ACTION_REASONS:
            self.misses.labels("action", reason)
        if store_stats is not None:
            r.register(StoreCollector(store_stats))
        self._apps: dict[str, AppCounters] = {}
        self._lock = threading.Lock()
        self.evicted_total = 0
        self.failed_total = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.address = ""

    # -- builds ------------------------------------------------------------------------
    def observe_build(
        self, owner: str, decisions: Sequence[cached_pb2.CacheDecision], phase_ms: dict[str, float],
        result: cached_pb2.BuildResult | None, metrics: cached_pb2.Metrics | None = None, error: BaseException | None = None,
    ) -> None:
        """Feeds one finished (or failed, or cancelled) build."""
        for d in counted_decisions(decisions):
            result_name = RESULTS.get(d.result)
            if result_name is None:
                continue
            self.lookups.labels(d.layer, result_name, d.tier or "local").inc()
            if d.result == MISS:
                self.misses.labels(d.layer, d.reason or "unknown").inc()
        for phase, ms in phase_ms.items():
            self.phase_seconds.labels(phase).observe(ms / 1000)
        now = int(time.time() * 1000)
        with self._lock:
            app = self._apps.setdefault(owner, AppCounters())
            app.last_build_unix_ms = now
            if result is not None:
                app.builds += 1
                app.action_hits += result.cache == "hit"
            elif error is not None and not isinstance(error, asyncio.CancelledError):
                app.builds += 1
                app.failed += 1
                self.failed_total += 1
        if result is not None:
            self.builds.labels(result.cache).inc()
            self.build_seconds.labels(result.cache).observe(result.duration_ms / 1000)
            if metrics is not None:
                self.bytes_restored.inc(metrics.bytes_restored)
                self.bytes_ingested.inc(metrics.bytes_ingested)
                self.packages_reused.inc(metrics.packages_reused)
                self.packages_fetched.inc(metrics.packages_fetched)
                self.package_bytes_downloaded.inc(metrics.package_bytes_downloaded)
        elif isinstance(error, asyncio.CancelledError):
            self.builds_cancelled.inc()
        elif error is not None:
            self.builds_failed.labels(error_kind(error)).inc()

    def app_counters(self) -> dict[str, AppCounters]:
        with self._lock:
            return {k: AppCounters(**vars(v)) for k, v in self._apps.items()}

    # -- operations --------------------------------------------------------------------
    def observe_gc(self, trigger: str, evicted: Iterable[tuple[str, bytes]], bytes_freed: int) -> None:
        self.gc_runs.labels(trigger).inc()
        n = 0
        for kind, _ in evicted:
            self.evictions.labels(kind).inc()
            n += 1
        with self._lock:
            self.evicted_total += n
        self.gc_bytes_freed.inc(bytes_freed)

    def observe_loop_lag(self, seconds: float) -> None:
        self.loop_lag.observe(seconds)
        if seconds > self.worst_loop_lag:
            self.worst_loop_lag = seconds
            self.loop_lag_max.set(seconds)

    def observe_purge(self, selector: str, entries: int, bytes_freed: int) -> None:
        self.purged.labels(selector).inc(entries)
        self.gc_bytes_freed.inc(bytes_freed)

    # -- the endpoint ------------------------------------------------------------------
    def serve(self, host: str, port: int) -> str:
        """Starts the HTTP endpoint in its own thread; returns the bound "host:port"."""
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        bound = self._server.server_address
        self.address = f"{host}:{bound[1]}"
        log.info("serving metrics", extra={"metrics_address": self.address})
        return self.address

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
