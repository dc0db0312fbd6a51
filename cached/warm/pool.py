"""The pool of warm builders: bounded by count and by total memory, LRU, idle timeout.

A builder's memory is what its cgroup counts (``WarmBuilder.rss_bytes``: the
group's usage without inactive file cache; the RSS of its processes only
where it has no cgroup). Builders are frozen between builds, so an idle one
costs memory but no CPU.

One builder per (tenant, app) ("owner"). The pool never kills a builder that
is serving a build; the pipeline's per-app lock means a builder serves one
build at a time. Counters are plain numbers for the operations side to export
(``metrics()``); every event that changes them is also logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from cached.warm.builder import WarmBuilder

log = logging.getLogger("cached.warm")

RSS_CHECK_INTERVAL_S = 5.0
DURATION_BUCKETS_MS = (100, 250, 500, 750, 1000, 1500, 2500, 5000, 10000, 30000)


@dataclass(frozen=True)
class WarmSettings:
    """Defaults fit a 2-core, 24 GB machine: a builder of the fixture app holds ~0.55 GiB
    resident after its first build and levels off at ~0.9 GiB after ten (measured with
    benchmarks/warm_rebuild.py); idle builders cost no CPU."""

    max_builders: int = 4             # 0 turns warm builds off
    max_memory_bytes: int = 4 << 30   # total memory of all builders (as their cgroups count it)
    idle_seconds: float = 900.0       # a builder unused this long is stopped
    shadow_share: float = 0.1         # share of warm results rebuilt cold in the background and compared
    start_timeout_s: float = 120.0    # from spawn to the driver's "ready"
    rebuild: str = "fresh"            # "fresh": a new Vite build each time; "session": a watch session rebuilt per edit (driver.mjs)

    @property
    def enabled(self) -> bool:
        return self.max_builders > 0


@dataclass
class WarmMetrics:
    """A snapshot for Prometheus (counters are monotonic since the daemon started)."""

    builders: int = 0
    rss_bytes: int = 0
    rss_per_builder: dict[str, int] = field(default_factory=dict)
    reused: int = 0
    started: int = 0
    fallbacks: dict[str, int] = field(default_factory=dict)   # reason -> count
    retired: dict[str, int] = field(default_factory=dict)     # reason -> count
    crashes: int = 0
    shadow_checks: int = 0
    shadow_mismatches: int = 0
    shadow_errors: int = 0
    disabled_apps: int = 0
    rebuild_ms_buckets: dict[float, int] = field(default_factory=dict)  # le -> cumulative count
    rebuild_ms_sum: float = 0.0
    rebuild_ms_count: int = 0
    builds_by_how: dict[str, int] = field(default_factory=dict)  # "rebuild" | "session-start" | "fresh" -> count


class WarmPool:
    def __init__(self, settings: WarmSettings) -> None:
        self.settings = settings
        self._builders: OrderedDict[str, WarmBuilder] = OrderedDict()  # least recently used first
        self.disabled: dict[str, str] = {}  # owner -> why (a shadow check found a difference)
        self.reused = 0
        self.started = 0
        self.crashes = 0
        self.shadow_checks = 0
        self.shadow_mismatches = 0
        self.shadow_errors = 0
        self.fallbacks: Counter[str] = Counter()
        self.retired: Counter[str] = Counter()
        self.how: Counter[str] = Counter()
        self._durations: list[float] = []
        self._duration_sum = 0.0
        self._duration_count = 0
        self._buckets: Counter[float] = Counter()
        self._reaper: asyncio.Task[None] | None = None
        self._rss: dict[str, int] = {}
        self._rss_at = 0.0
        self._closed = False

    # ------------------------------------------------------------- lookups

    def get(self, owner: str) -> WarmBuilder | None:
        builder = self._builders.get(owner)
        if builder is not None:
            self._builders.move_to_end(owner)
        return builder

    def __len__(self) -> int:
        return len(self._builders)

    def owners(self) -> list[str]:
        return list(self._builders)

    # ------------------------------------------------------------ changes

    async def add(self, builder: WarmBuilder) -> None:
        """Takes a started builder; evicts least recently used idle ones over the bounds."""
        if self._closed:
            await builder.stop()
            return
        old = self._builders.pop(builder.owner, None)
        if old is not None:
            await self._stop(old, "replaced")
        self._builders[builder.owner] = builder
        self.started += 1
        self._ensure_reaper()
        while len(self._builders) > self.settings.max_builders:
            if not await self._evict_one(keep=builder.owner, reason="pool_full"):
                break

    async def retire(self, owner: str, reason: str) -> bool:
        builder = self._builders.pop(owner, None)
        if builder is None:
            return False
        await self._stop(builder, reason)
        return True

    def record_rebuild(self, ms: float) -> None:
        self.reused += 1
        self._duration_sum += ms
        self._duration_count += 1
        for le in DURATION_BUCKETS_MS:
            if ms <= le:
                self._buckets[le] += 1
        self._durations.append(ms)
        del self._durations[:-1000]

    def record_how(self, how: str) -> None:
        if how:
            self.how[how] += 1

    def record_fallback(self, reason: str) -> None:
        self.fallbacks[reason] += 1

    def disable(self, owner: str, why: str) -> None:
        self.disabled[owner] = why

    async def enforce_memory(self, keep: str) -> None:
        """Over the memory bound: evict LRU idle builders; a lone builder over it is retired too."""
        total = sum(self.rss(force=True).values())
        while total > self.settings.max_memory_bytes and self._builders:
            victim = next((o for o, b in self._builders.items() if not b.busy and o != keep), None)
            if victim is None:
                if keep in self._builders and total > self.settings.max_memory_bytes:
                    await self.retire(keep, "memory")
                break
            await self.retire(victim, "memory")
            total = sum(self.rss(force=True).values())

    def rss(self, force: bool = False) -> dict[str, int]:
        now = time.monotonic()
        if force or now - self._rss_at > RSS_CHECK_INTERVAL_S:
            self._rss = {owner: b.rss_bytes() for owner, b in self._builders.items()}
            self._rss_at = now
        return dict(self._rss)

    async def stop(self) -> None:
        """At shutdown: every builder is killed and its scratch removed."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        while self._builders:
            _owner, builder = self._builders.popitem(last=False)
            await self._stop(builder, "shutdown")

    def metrics(self) -> WarmMetrics:
        rss = self.rss()
        cumulative: dict[float, int] = {}
        for le in DURATION_BUCKETS_MS:
            cumulative[float(le)] = self._buckets[le]
        return WarmMetrics(
            builders=len(self._builders), rss_bytes=sum(rss.values()), rss_per_builder=rss,
            reused=self.reused, started=self.started, fallbacks=dict(self.fallbacks), retired=dict(self.retired),
            crashes=self.crashes, shadow_checks=self.shadow_checks, shadow_mismatches=self.shadow_mismatches,
            shadow_errors=self.shadow_errors, disabled_apps=len(self.disabled), rebuild_ms_buckets=cumulative,
            rebuild_ms_sum=self._duration_sum, rebuild_ms_count=self._duration_count, builds_by_how=dict(self.how),
        )

    # ------------------------------------------------------------ helpers

    async def _evict_one(self, keep: str, reason: str) -> bool:
        for owner, builder in self._builders.items():
            if owner != keep and not builder.busy:
                await self.retire(owner, reason)
                return True
        return False

    async def _stop(self, builder: WarmBuilder, reason: str) -> None:
        self.retired[reason] += 1
        self._rss.pop(builder.owner, None)
        log.info("warm builder stopped", extra={"owner": builder.owner, "reason": reason, "builds": builder.builds, "age_s": round(time.monotonic() - builder.started, 1)})
        try:
            await builder.stop()
        except Exception:  # noqa: BLE001 - stopping must go on for the others
            log.exception("warm builder: stop failed", extra={"owner": builder.owner})

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        """Stops idle builders and forgets dead ones (a crash is counted once)."""
        interval = max(0.05, min(30.0, self.settings.idle_seconds / 4))
        while self._builders:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for owner, builder in list(self._builders.items()):
                if builder.busy or self._builders.get(owner) is not builder:
                    continue
                if not builder.alive:
                    self.crashes += 1
                    log.warning("warm builder exited on its own", extra={"owner": owner, "returncode": builder.proc.returncode})
                    await self.retire(owner, "crashed")
                elif now - builder.last_used > self.settings.idle_seconds:
                    await self.retire(owner, "idle")
