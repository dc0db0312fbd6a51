"""Stats per tenant and app: bytes and entries from the store, builds and hit rate (kept in the store, so across restarts).

Bytes per app are what its entries name (an entry's size is its blobs and
trees), so a blob shared by two entries counts in both: the totals come from
the store itself, deduplicated. Entries belong to the app that made them; an
action entry another app of the tenant hits stays its maker's.

Internal apps (a name starting with ".": the warm layer's shadow checks,
``.shadow-<app>``, cold rebuilds comparing a warm output) are no caller's:
they are never listed; the shadow checks' builds, bytes and entries are
counted apart, per tenant and in the totals.

The answer is plain data (``Stats``): the Admin servicer turns it into a
response. This module knows nothing of the API; it reads every entry, so call
``collect_stats`` from a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cached.operate.metrics import BuildMetrics
from cached.store import Store
from cached.warm.layer import SHADOW_PREFIX

INTERNAL_PREFIX = "."  # app ids cannot start with a dot: an app so named is the daemon's own


def is_internal(app: str) -> bool:
    return app.startswith(INTERNAL_PREFIX)


def rate(hits: int, builds: int) -> float:
    return hits / builds if builds else 0.0


class _HitRate:
    """The action-cache hit rate of whatever counts ``builds`` and ``action_hits``."""

    builds: int
    action_hits: int

    @property
    def hit_rate(self) -> float:
        return rate(self.action_hits, self.builds)


@dataclass
class AppUsage(_HitRate):
    tenant: str
    app: str
    last_action_key: str = ""
    last_build_unix_ms: int = 0
    bytes: int = 0
    entries: int = 0
    builds: int = 0
    action_hits: int = 0
    builds_failed: int = 0


@dataclass
class TenantUsage(_HitRate):
    tenant: str
    bytes: int = 0
    entries: int = 0
    apps: int = 0
    builds: int = 0
    action_hits: int = 0
    last_build_unix_ms: int = 0
    shadow_builds: int = 0  # the warm layer's shadow checks (cold rebuilds), never in builds
    shadow_bytes: int = 0
    shadow_entries: int = 0


@dataclass
class Stats(_HitRate):
    """The store's totals, entries by kind, and the figures of every tenant and app (sorted)."""

    blob_count: int
    bytes: int
    actions: int
    apps: int
    digest_function: str
    builds: int  # Build calls answered since start
    action_hits: int
    builds_failed: int
    evictions: int
    max_bytes: int  # the configured cap, 0 for none
    metrics_address: str  # "" when metrics are off
    entries: dict[str, int] = field(default_factory=dict)
    app_stats: list[AppUsage] = field(default_factory=list)
    tenant_stats: list[TenantUsage] = field(default_factory=list)
    shadow_builds: int = 0
    shadow_bytes: int = 0
    shadow_entries: int = 0
    remote: "RemoteState | None" = None


@dataclass
class RemoteState:
    """The shared tier's figures, flattened (``cached/remote`` keeps them by kind and operation)."""

    bucket: str
    prefix: str
    writer: bool
    queue_depth: int
    queued_bytes: int
    circuit_open: bool
    bytes_in: int
    bytes_out: int
    counters: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def of(tier: Any) -> "RemoteState":
        snapshot = tier.stats.snapshot()
        counters = {f"{group}.{name}": n for group in ("hits", "misses", "written", "dropped", "rejected", "errors", "skipped")
                    for name, n in snapshot[group].items()}
        return RemoteState(
            bucket=tier.settings.bucket, prefix=tier.settings.prefix, writer=tier.writable, queue_depth=tier.queue_depth,
            queued_bytes=tier.queued_bytes, circuit_open=tier.breaker.state == "open",
            bytes_in=snapshot["bytes_in"], bytes_out=snapshot["bytes_out"], counters=counters,
        )


@dataclass
class _Usage:
    bytes: int = 0
    entries: int = 0


def collect_stats(store: Store, metrics: BuildMetrics, *, builds: int, action_hits: int, max_bytes: int) -> Stats:
    """Reads the totals (O(1)), then every root entry and app record once (a worker thread)."""
    totals = store.stats()
    usage: dict[str, _Usage] = {}
    entries: dict[str, int] = {}
    for e in store.iter_roots():
        entries[e.kind] = entries.get(e.kind, 0) + 1
        if e.owner:
            u = usage.setdefault(e.owner, _Usage())
            u.bytes += e.size
            u.entries += 1
    counters = store.app_counts.all()
    records = store.apps.all()
    apps: list[AppUsage] = []
    tenants: dict[str, TenantUsage] = {}
    shadow = TenantUsage(tenant="")
    for owner in sorted(set(records) | set(counters) | set(usage)):
        tenant, _, app = owner.partition("/")
        record, c, u = records.get(owner), counters.get(owner), usage.get(owner, _Usage())
        if is_internal(app):
            if app.startswith(SHADOW_PREFIX):
                t = tenants.setdefault(tenant, TenantUsage(tenant=tenant))
                for acc in (t, shadow):
                    acc.shadow_builds += record.builds if record else 0
                    acc.shadow_bytes += u.bytes
                    acc.shadow_entries += u.entries
            continue
        app_builds, hits = (c.builds, c.action_hits) if c else (0, 0)
        last = max(c.last_build_unix_ms if c else 0, record.last_build_unix_ms if record else 0)
        apps.append(AppUsage(
            tenant=tenant, app=app, last_action_key=record.last_action_key if record else "", last_build_unix_ms=last,
            bytes=u.bytes, entries=u.entries, builds=app_builds, action_hits=hits, builds_failed=c.failed if c else 0,
        ))
        t = tenants.setdefault(tenant, TenantUsage(tenant=tenant))
        t.bytes += u.bytes
        t.entries += u.entries
        t.apps += 1
        t.builds += app_builds
        t.action_hits += hits
        t.last_build_unix_ms = max(t.last_build_unix_ms, last)
    return Stats(
        blob_count=totals.blobs, bytes=totals.bytes, actions=totals.roots.get(store.actions.kind, 0),
        apps=sum(not is_internal(owner.partition("/")[2]) for owner in records),
        digest_function=store.hasher.function, builds=builds, action_hits=action_hits,
        builds_failed=metrics.failed_total, evictions=metrics.evicted_total, max_bytes=max_bytes,
        metrics_address=metrics.address, entries=entries, app_stats=apps, tenant_stats=[tenants[k] for k in sorted(tenants)],
        shadow_builds=shadow.shadow_builds, shadow_bytes=shadow.shadow_bytes, shadow_entries=shadow.shadow_entries,
    )
