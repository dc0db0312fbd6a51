"""Stats per tenant and app: bytes and entries from the store, builds and hit rate since start.

Bytes per app are what its entries name (an entry's size is its blobs and
trees), so a blob shared by two entries counts in both: the totals come from
the store itself, deduplicated. Entries belong to the app that made them; an
action entry another app of the tenant hits stays its maker's.
"""

from __future__ import annotations

from dataclasses import dataclass

from cached.operate.metrics import BuildMetrics
from cached.store import Store
from cached.v1 import admin_pb2


@dataclass
class _Usage:
    bytes: int = 0
    entries: int = 0


def _rate(hits: int, builds: int) -> float:
    return hits / builds if builds else 0.0


def fill_stats(response: admin_pb2.StatsResponse, store: Store, metrics: BuildMetrics) -> None:
    """Adds entries by kind and per-tenant/app figures to a StatsResponse (which has the totals)."""
    usage: dict[str, _Usage] = {}
    entries: dict[str, int] = {}
    for e in store.iter_roots():
        entries[e.kind] = entries.get(e.kind, 0) + 1
        if e.owner:
            u = usage.setdefault(e.owner, _Usage())
            u.bytes += e.size
            u.entries += 1
    response.entries.update(entries)
    counters = metrics.app_counters()
    records = store.apps.all()
    tenants: dict[str, admin_pb2.TenantStats] = {}
    for owner in sorted(set(records) | set(counters) | set(usage)):
        tenant, _, app = owner.partition("/")
        record, c, u = records.get(owner), counters.get(owner), usage.get(owner, _Usage())
        builds, hits = (c.builds, c.action_hits) if c else (0, 0)
        last = max(c.last_build_unix_ms if c else 0, record.last_build_unix_ms if record else 0)
        response.app_stats.append(admin_pb2.AppStats(
            tenant=tenant, app=app, last_action_key=record.last_action_key if record else "", last_build_unix_ms=last,
            bytes=u.bytes, entries=u.entries, builds=builds, action_hits=hits, hit_rate=_rate(hits, builds),
            builds_failed=c.failed if c else 0,
        ))
        t = tenants.setdefault(tenant, admin_pb2.TenantStats(tenant=tenant))
        t.bytes += u.bytes
        t.entries += u.entries
        t.apps += 1
        t.builds += builds
        t.action_hits += hits
        t.last_build_unix_ms = max(t.last_build_unix_ms, last)
    for t in tenants.values():
        t.hit_rate = _rate(t.action_hits, t.builds)
    response.tenant_stats.extend(tenants[k] for k in sorted(tenants))
    response.hit_rate = _rate(response.action_hits, response.builds)
    response.builds_failed = metrics.failed_total
    response.evictions = metrics.evicted_total
