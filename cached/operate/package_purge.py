"""Purge one package version everywhere: what an operator does about a compromised release.

It removes the package store's records of NAME@VERSION (by the name and
version they hold, and by the integrity the trees' lockfile entries give),
every dependency tree that holds it (by real name: an alias is found too),
and every action result and Vite cache built on one of those trees, whoever's
they are. Each removed root leaves a ``purged`` tombstone, so the next build
of an affected app says why it misses instead of blaming its sources.

Safe while builds run, as the other purges are: roots are deleted, then the
sweep reclaims only what no remaining root, lease or running build needs, so
a build already using one of the trees finishes with it. A build that was
running on such a tree may commit its result after the first pass looked; a
second pass (up to ``PASSES``) removes what was committed on the purged trees
meanwhile, and the report counts those as ``late_entries``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from cached.operate.metrics import BuildMetrics
from cached.operate.packages import PackageSelector, integrity_key, matching_package_records, matching_trees
from cached.store import Removed, RootEntry, Store, Tombstones
from cached.store.collect import Held
from cached.v1 import records_pb2

log = logging.getLogger("cached.operate.package_purge")

SHOWN = 20
PASSES = 3  # the first, and at most two more for what builds committed meanwhile


@dataclass
class KindTotal:
    entries: int = 0
    bytes: int = 0


@dataclass
class PackagePurgeReport:
    selector: PackageSelector
    dry_run: bool
    entries: int = 0
    bytes: int = 0
    by_kind: dict[str, KindTotal] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    apps: list[str] = field(default_factory=list)  # every tenant/app that lost an action or a Vite cache, sorted
    late_entries: int = 0
    blobs_deleted: int = 0
    bytes_freed: int = 0
    bytes_after: int = 0
    held: list[Held] = field(default_factory=list)

    def add(self, entries: Iterable[RootEntry], *, late: bool = False) -> None:
        apps = set(self.apps)
        for e in entries:
            total = self.by_kind.setdefault(e.kind, KindTotal())
            total.entries += 1
            total.bytes += e.size
            self.entries += 1
            self.bytes += e.size
            self.late_entries += int(late)
            if len(self.keys) < SHOWN:
                self.keys.append(f"{e.kind}/{e.key.decode(errors='replace')}")
            if e.owner and e.kind in ("actions", "vitecache"):
                apps.add(e.owner)
        self.apps = sorted(apps)


class PackagePurger:
    """``purge --package NAME@VERSION``: blocking (it reads every root and sweeps), so run it in a thread."""

    def __init__(self, store: Store, tombstones: Tombstones, metrics: BuildMetrics) -> None:
        self.store = store
        self.tombstones = tombstones
        self.metrics = metrics

    def select(self, selector: PackageSelector, deps_keys: set[str] | None = None) -> list[RootEntry]:
        """Every root made with the package: its package records, the trees holding it, and the actions
        and Vite caches on those trees (or on any of ``deps_keys``, trees an earlier pass removed).
        ``deps_keys`` gains the keys of the trees found."""
        deps_keys = set() if deps_keys is None else deps_keys
        trees = list(matching_trees(self.store, selector))
        deps_keys.update(t.deps_key for t in trees)
        package_keys = {key for t in trees for r in t.refs if (key := integrity_key(r.integrity)) is not None}
        packages = {e.key: e for e, _ in matching_package_records(self.store, selector)}
        for key in package_keys - packages.keys():  # a record whose name or version differs from the lockfile's
            entry = self.store.packages.peek(key)
            if entry is not None:
                packages[key] = entry
        actions = [e for e in self.store.actions.iter() if _deps_key(records_pb2.ActionRecord, e) in deps_keys]
        vite = [e for e in self.store.vitecache.iter() if _deps_key(records_pb2.ViteCacheRecord, e) in deps_keys]
        return [*sorted(packages.values(), key=lambda e: e.key), *(t.entry for t in trees), *actions, *vite]

    def purge(self, selector: PackageSelector, *, dry_run: bool = False) -> PackagePurgeReport:
        if not selector.version:
            raise ValueError(f"purge --package {selector}: give the version too (NAME@VERSION)")
        report = PackagePurgeReport(selector, dry_run)
        deps_keys: set[str] = set()
        chosen = self.select(selector, deps_keys)
        report.add(chosen)
        if dry_run:
            report.bytes_after = self.store.stats().bytes
            return report
        removed: set[tuple[str, bytes, int]] = set()  # with its creation: a root put again under the same key is new
        for n in range(PASSES):
            fresh = [e for e in chosen if (e.kind, e.key, e.created_ns) not in removed]
            if not fresh:
                break
            if n:
                report.add(fresh, late=True)
            self._remove(fresh)
            removed.update((e.kind, e.key, e.created_ns) for e in fresh)
            chosen = self.select(selector, deps_keys)
        swept = self.store.sweep()
        report.blobs_deleted, report.bytes_freed, report.bytes_after = swept.blobs_deleted, swept.bytes_freed, swept.bytes_after
        report.held = swept.held
        self.metrics.observe_purge("package", report.entries, swept.bytes_freed)
        log.info("purge", extra={"selector": "package", "package": str(selector), "entries": report.entries,
                                 "late_entries": report.late_entries, "bytes": report.bytes, "bytes_freed": swept.bytes_freed})
        return report

    def _remove(self, entries: list[RootEntry]) -> None:
        """Deletes the roots kind by kind, then leaves their tombstones (the next miss reads them)."""
        by_kind: dict[str, list[bytes]] = {}
        for e in entries:
            by_kind.setdefault(e.kind, []).append(e.key)
        for kind, keys in by_kind.items():
            self.store.delete_roots(kind, keys).result()
        self.tombstones.record([Removed(e.kind, e.key, e.owner) for e in entries], "purged").result()


def _deps_key(message: type[records_pb2.ActionRecord] | type[records_pb2.ViteCacheRecord], entry: RootEntry) -> str:
    try:
        return message.FromString(entry.value).deps_key
    except Exception:  # noqa: BLE001 - an unreadable record names no tree
        return ""
