"""The operations side of one daemon: wires metrics, tombstones, history, purge (also by package), GC and verify.

It is also the pipeline's BuildObserver: every ended build feeds the metrics,
every changed app record feeds the app's history, and a build that stored
bytes nudges the automatic collector.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from cached.execution.events import EventStream
from cached.request.spec import BuildSpec
from cached.execution.toolchain import Toolchain
from cached.digest import Digest
from cached.operate.config import OperateConfig, metrics_address
from cached.operate.explain import AppHistory, Explainer
from cached.operate.gc import AutoCollector, GarbageCollector
from cached.operate.looplag import LoopLag
from cached.operate.metrics import BuildMetrics
from cached.operate.package_explain import PackageExplainer
from cached.operate.package_purge import PackagePurger
from cached.operate.purge import Purger
from cached.operate.stats import RemoteState, Stats, collect_stats
from cached.operate.verify import Verifier
from cached.store import Store
from cached.v1 import cached_pb2, records_pb2

log = logging.getLogger("cached.operate")


class Operations:
    def __init__(self, store: Store, config: OperateConfig, toolchain: Toolchain, install_commands: Sequence[Sequence[str]]) -> None:
        self.store = store
        self.config = config
        self.metrics = BuildMetrics(store.stats)
        self.remote: Any = None  # the shared tier (cached/remote), set by the composition root when there is one
        self.tombstones = store.tombstones
        self.history = AppHistory(store, toolchain, install_commands)
        self.gc = GarbageCollector(store, self.tombstones, self.metrics)
        self.purger = Purger(store, self.tombstones, self.metrics)
        self.verifier = Verifier(store, self.tombstones, self.metrics)
        self.explainer = Explainer(store, self.history, self.tombstones)
        self.package_purger = PackagePurger(store, self.tombstones, self.metrics)  # across tenants: admin only
        self.package_explainer = PackageExplainer(store)
        self.autocollect = AutoCollector(
            store, self.gc, max_bytes=config.max_bytes, low_watermark=config.low_watermark, interval_s=config.gc_interval_s,
        )
        self.loop_lag = LoopLag(self.metrics)

    async def start(self) -> None:
        """Serves metrics (when configured), starts the automatic collector (when capped) and the loop-lag timer."""
        if self.config.metrics_listen:
            host, port = metrics_address(self.config.metrics_listen)
            self.metrics.serve(host, port)
        self.autocollect.start()
        self.loop_lag.start()

    async def stop(self) -> None:
        await self.loop_lag.stop()
        await self.autocollect.stop()
        self.metrics.close()

    def stats(self, builds: int = 0, action_hits: int = 0) -> Stats:
        """The store's figures with this daemon's (``builds``/``action_hits``: the pipeline's counters). Blocking."""
        stats = collect_stats(self.store, self.metrics, builds=builds, action_hits=action_hits, max_bytes=self.config.max_bytes)
        if self.remote is not None:
            stats.remote = RemoteState.of(self.remote)
        return stats

    # -- BuildObserver -----------------------------------------------------------------
    def app_recorded(
        self, spec: BuildSpec, sources: Digest, record: records_pb2.AppRecord,
        previous: records_pb2.AppRecord | None, decisions: Sequence[cached_pb2.CacheDecision],
    ) -> None:
        try:
            self.history.recorded(spec, sources, record, previous, decisions)
        except Exception:  # noqa: BLE001 - history is for people; the build stands
            log.warning("could not keep the app's history", exc_info=True, extra={"owner": spec.owner})

    def build_ended(self, spec: BuildSpec, events: EventStream, result: cached_pb2.BuildResult | None, error: BaseException | None) -> None:
        try:
            self.metrics.observe_build(spec.owner, events.decisions, events.phase_ms, result, events.metrics, error)
            counted = result is not None or (error is not None and not isinstance(error, asyncio.CancelledError))
            if counted:  # in memory; the store's writer keeps it in batches, so hit rates survive a restart
                self.store.app_counts.add(spec.owner, builds=1, action_hits=int(result is not None and result.cache == "hit"),
                                          failed=int(result is None), last_build_unix_ms=int(time.time() * 1000))
        except Exception:  # noqa: BLE001 - metrics never fail a build
            log.warning("could not count a build", exc_info=True, extra={"owner": spec.owner})
        if result is not None and events.metrics is not None and events.metrics.bytes_ingested:
            self.autocollect.nudge()


__all__ = ["Operations", "OperateConfig"]
