"""Eviction and mark-and-sweep: reclaims what no root, lease or in-flight ingest needs.

``collect(max_bytes)`` works with two watermarks: nothing is evicted while the
store holds at most ``max_bytes``; above it, roots are evicted in LRU order
until what the remaining roots (plus protected blobs) need fits in
``LOW_WATERMARK * max_bytes`` (90 %), so a store hovering at its cap is not
collected on every build. Recency is strict: the most recently used roots that
fit are kept, and every root older than the first that does not fit goes.
Then the sweep deletes every blob file that nothing marks.

A blob is kept when a surviving root names it (directly or through a tree), a
lease covers it, or it was created or put at or after the horizon (the start of
the oldest running ingest, and at most ``grace_seconds`` before the sweep).
Roots committed while a sweep runs are seen through ``Protection``'s watch.

The report says what stayed because of a protection (``held``): per reason
(``leased``, ``grace``, ``running_build``) the blobs, bytes and when the first
and the last of them become freeable. After an eviction pass every protected
blob left counts; after a plain sweep only those no remaining root names.

This module must never delete a file without checking, under the protection
lock, that no put, lease or root revived it since the mark, and never remove a
materialised tree's directory before its mark is gone from the index.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lmdb

from cached.digest import Digest
from cached.store.blobs import BlobStore, parse_name, unpack_record
from cached.store.errors import TreeNotFound
from cached.store.index import Index
from cached.store.protect import Protection, SweepWatch
from cached.store.roots import RootEntry, RootStore
from cached.store.trees import TreeStore

log = logging.getLogger("cached.store.collect")

LOW_WATERMARK = 0.9


HELD_REASONS = ("leased", "grace", "running_build")


def _utc(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ns / 1e9))


@dataclass
class Held:
    """Bytes a protection kept, for one reason, and when they become freeable (0: when a running build ends)."""

    reason: str
    count: int = 0  # blobs
    bytes: int = 0
    free_from_ns: int = 0  # the first of them
    free_all_ns: int = 0  # all of them

    def add(self, size: int, free_ns: int) -> None:
        self.count += 1
        self.bytes += size
        if free_ns:
            self.free_from_ns = free_ns if not self.free_from_ns else min(self.free_from_ns, free_ns)
            self.free_all_ns = max(self.free_all_ns, free_ns)

    def describe(self) -> str:
        if self.reason == "running_build":
            return "in use by a running build (freeable when it ends)"
        until = _utc(self.free_all_ns)
        first = f", the first at {_utc(self.free_from_ns)}" if _utc(self.free_from_ns) != until else ""
        if self.reason == "leased":
            return f"leased until {until}{first} (a hit leases what it served; a build's dependencies while it runs)"
        return f"younger than the grace period (until {until}{first})"


@dataclass
class CollectReport:
    roots_evicted: int = 0
    blobs_deleted: int = 0
    files_deleted: int = 0
    bytes_freed: int = 0
    trees_removed: int = 0
    blobs_kept_protected: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    dry_run: bool = False
    seconds: float = 0.0
    evicted: list[tuple[str, bytes]] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)  # what protections kept, by reason (those with bytes only)

    @property
    def bytes_held(self) -> int:
        return sum(h.bytes for h in self.held)


@dataclass
class _Disk:
    """What a scan of ``cas/`` found: files and bytes per digest key."""

    files: dict[bytes, list[str]] = field(default_factory=dict)
    sizes: dict[bytes, int] = field(default_factory=dict)
    ctimes: dict[bytes, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.sizes.values())


class Collector:
    def __init__(
        self,
        root: Path,
        index: Index,
        blobs: BlobStore,
        trees: TreeStore,
        roots: RootStore,
        protection: Protection,
    ) -> None:
        self.cas = root / "cas"
        self.index = index
        self.blobs = blobs
        self.trees = trees
        self.roots = roots
        self.protection = protection
        self._lock = threading.Lock()

    def scan(self) -> _Disk:
        disk = _Disk()
        function = self.blobs.function
        for sub in sorted(os.listdir(self.cas)):
            directory = os.path.join(self.cas, sub)
            try:
                entries = list(os.scandir(directory))
            except NotADirectoryError:
                continue
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                h, _, _ = parse_name(entry.name)
                key = f"{function}:{h}:{st.st_size}".encode()
                disk.files.setdefault(key, []).append(entry.path)
                disk.sizes[key] = disk.sizes.get(key, 0) + st.st_size
                disk.ctimes[key] = max(disk.ctimes.get(key, 0), st.st_ctime_ns)
        return disk

    def _tree_keys(self, tree: Digest, cache: dict[Digest, set[bytes]]) -> set[bytes]:
        keys = cache.get(tree)
        if keys is None:
            keys = {tree.key}
            try:
                keys.update(d.key for d in self.trees.file_digests(tree))
            except TreeNotFound:
                log.warning("a root or lease names tree %s, whose manifest is missing", tree)
            cache[tree] = keys
        return keys

    def _refs(self, entry: RootEntry, cache: dict[Digest, set[bytes]]) -> set[bytes]:
        keys = {d.key for d in entry.blobs}
        for t in entry.trees:
            keys |= self._tree_keys(t, cache)
        return keys

    def collect(self, max_bytes: int | None = None, *, dry_run: bool = False) -> CollectReport:
        with self._lock:
            started = time.perf_counter()
            report = CollectReport(dry_run=dry_run)
            horizon = self.protection.horizon_ns(time.time_ns())
            watch = self.protection.start_watch(horizon)
            try:
                self._collect(report, watch, horizon, max_bytes, dry_run)
            finally:
                self.protection.stop_watch()
            if not dry_run:
                self.protection.forget_puts_before(horizon)
            report.seconds = time.perf_counter() - started
            log.info(
                "collect: evicted %d roots, deleted %d blobs (%d bytes), removed %d trees, %d bytes left%s",
                report.roots_evicted, report.blobs_deleted, report.bytes_freed,
                report.trees_removed, report.bytes_after, " (dry run)" if dry_run else "",
            )
            return report

    def _collect(
        self, report: CollectReport, watch: SweepWatch, horizon: int, max_bytes: int | None, dry_run: bool
    ) -> None:
        disk = self.scan()
        report.bytes_before = disk.total
        created = {bytes(k): unpack_record(bytes(v))[1] for k, v in self.index.items("blobs")}
        cache: dict[Digest, set[bytes]] = {}
        leased_blobs, leased_trees = self.protection.leased()
        protected: set[bytes] = set(leased_blobs)
        for t in leased_trees:
            protected |= self._tree_keys(t, cache)

        def is_new(key: bytes) -> bool:
            return (
                self.protection.put_since(key, horizon)
                or created.get(key, -1) >= horizon
                or (key not in created and disk.ctimes.get(key, -1) >= horizon)
            )

        roots = list(self.roots.iter())
        evict: list[RootEntry] = []
        if max_bytes is not None and disk.total > max_bytes:
            evict = self._choose(roots, disk, protected | {k for k in disk.sizes if is_new(k)}, max_bytes, cache)
        evicted_ids: set[tuple[str, bytes]] = set()
        if evict:
            if dry_run:
                evicted_ids = {(e.kind, e.key) for e in evict}
            else:
                evicted_ids = self._evict(evict)
            report.roots_evicted = len(evicted_ids)
            report.evicted = sorted(evicted_ids)

        rooted: set[bytes] = set()
        for entry in roots:
            if (entry.kind, entry.key) not in evicted_ids:
                rooted |= self._refs(entry, cache)
        marked: set[bytes] = protected | rooted

        deleted: list[bytes] = []
        for key in sorted(disk.files):
            if key in marked:
                continue
            with self.protection.lock:
                self._absorb(watch, marked, cache)
                if key in marked or is_new(key) or self.protection.is_leased(key):
                    report.blobs_kept_protected += 1
                    continue
                if not dry_run:
                    for path in disk.files[key]:
                        try:
                            os.unlink(path)
                        except FileNotFoundError:
                            pass
            deleted.append(key)
            report.files_deleted += len(disk.files[key])
            report.bytes_freed += disk.sizes[key]
        report.blobs_deleted = len(deleted)
        report.bytes_after = report.bytes_before - report.bytes_freed

        gone = set(deleted)
        evicting = max_bytes is not None and disk.total > max_bytes
        kept = [k for k in disk.files if k not in gone and (evicting or k not in rooted)]
        report.held = self._held(kept, disk, created, is_new, cache)
        stale = [k for k in created if k not in disk.files and not is_new(k)]
        dead_trees = [
            name for name, digest in self.trees.materialised().items()
            if digest.key in gone or digest.key not in disk.files
        ]
        report.trees_removed = len(dead_trees)
        if dry_run or not (gone or stale or dead_trees):
            return
        self.index.submit(lambda txn: self._drop_records(txn, gone | set(stale), dead_trees, horizon)).result()
        self.trees.remove_dirs(dead_trees)

    def _held(
        self, keys: list[bytes], disk: _Disk, created: dict[bytes, int],
        is_new: Callable[[bytes], bool], cache: dict[Digest, set[bytes]],
    ) -> list[Held]:
        """Sorts the protected ones of ``keys`` by the protection that lasts longest, with when it ends."""
        now = time.time_ns()
        blob_ends, tree_ends = self.protection.lease_ends()
        lease_end = dict(blob_ends)
        for t, end in tree_ends.items():
            for k in self._tree_keys(t, cache):
                lease_end[k] = max(lease_end.get(k, 0), end)
        held = {r: Held(r) for r in HELD_REASONS}
        for key in keys:
            leased = lease_end.get(key, 0)
            leased = leased if leased > now else 0
            grace = 0
            if is_new(key):
                born = max(created.get(key, 0), self.protection.last_put_ns(key),
                           disk.ctimes.get(key, 0) if key not in created else 0)
                grace = born + self.protection.grace_ns
                if grace <= now:  # newer than the oldest running ingest, past the grace period
                    held["running_build"].add(disk.sizes[key], 0)
                    continue
            if leased or grace:
                held["leased" if leased >= grace else "grace"].add(disk.sizes[key], max(leased, grace))
        return [h for h in held.values() if h.count]

    def _absorb(self, watch: SweepWatch, marked: set[bytes], cache: dict[Digest, set[bytes]]) -> None:
        """Marks what roots and leases added since the mark began (caller holds the protection lock)."""
        if watch.blobs:
            marked |= watch.blobs
            watch.blobs = set()
        if watch.trees:
            trees, watch.trees = watch.trees, []
            for t in trees:
                marked |= self._tree_keys(t, cache)

    def _choose(
        self,
        roots: list[RootEntry],
        disk: _Disk,
        protected: set[bytes],
        max_bytes: int,
        cache: dict[Digest, set[bytes]],
    ) -> list[RootEntry]:
        target = int(max_bytes * LOW_WATERMARK)
        reached = set(protected)
        used = sum(disk.sizes.get(k, 0) for k in reached)
        ordered = sorted(roots, key=lambda e: e.last_access_ns, reverse=True)
        for i, entry in enumerate(ordered):
            new = self._refs(entry, cache) - reached
            if not new:
                # Everything it names is kept anyway (protected, or shared with a newer root):
                # evicting it would lose a cache entry and free nothing.
                continue
            extra = sum(disk.sizes.get(k, 0) for k in new)
            if used + extra > target:
                return [e for e in ordered[i:] if self._refs(e, cache) - reached]
            reached |= new
            used += extra
        return []

    def _evict(self, evict: list[RootEntry]) -> set[tuple[str, bytes]]:
        """Deletes the chosen roots, except those hit again since the snapshot."""

        def fn(txn: lmdb.Transaction) -> set[tuple[str, bytes]]:
            done: set[tuple[str, bytes]] = set()
            for entry in evict:
                if self.roots.last_access(entry.kind, entry.key, 0) > entry.last_access_ns:
                    continue
                if self.roots.delete_in_txn(txn, entry.kind, entry.key):
                    done.add((entry.kind, entry.key))
            return done

        return self.index.submit(fn).result()

    def _drop_records(self, txn: lmdb.Transaction, keys: set[bytes], dead_trees: list[str], horizon: int) -> None:
        owners_db = self.index.db("owners")
        dropped: list[bytes] = []
        for key in keys:
            if self.protection.put_since(key, horizon):
                continue  # put again since we deleted it: its new file keeps its record
            dropped.append(key)
            cursor = txn.cursor(db=owners_db)
            prefix = key + b"\x00"
            if cursor.set_range(prefix):
                while cursor.key().startswith(prefix):
                    if not cursor.delete():
                        break
        self.blobs.totals.forget(txn, dropped)
        self.trees.unmark_and_remove(txn, dead_trees)
