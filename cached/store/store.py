"""The store's facade: opens a root, wires the parts together, closes it cleanly.

Opening takes the root's lock first (one process per root), then clears what a
crash may have left (``tmp/``, unmarked trees) before anything reads the store.

Callers reach the index through the named record stores it exposes
(``store.actions``, ``store.apps``, ``store.lookups``...; see ``records.py``),
never by a database's name.

This module must never hold logic of its own beyond wiring and start-up
recovery, and a ``Store`` must never be used across ``fork()``: open it in the
process that uses it (LMDB and the writer thread do not survive a fork).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cached.digest import BLAKE3, Digest, Hasher
from cached.store.blobs import BlobStore
from cached.store.collect import Collector, CollectReport
from cached.store.fsutil import clear_dir, syncfs
from cached.store.index import Index
from cached.store.lock import RootLock
from cached.store.protect import Protection
from cached.store.records import (
    ActionRoots, AppCounts, AppHistories, AppRecords, AppScopedRoots, Deployments, Lookups, RootRecords, Watermarks,
)
from cached.store.roots import ROOT_KINDS, RootEntry, RootStore
from cached.store.tombstones import Tombstones
from cached.store.trees import TreeStore
from cached.store.verify import VerifyReport, verify_store

log = logging.getLogger("cached.store")

LAYOUT = ("index", "cas", "trees", "tmp", "work", "scratch", "quarantine")


@dataclass(frozen=True)
class StoreStats:
    blobs: int
    bytes: int
    roots: dict[str, int]
    trees_materialised: int
    pending_blobs: int
    map_size: int
    apps: int = 0


class Store(AbstractContextManager["Store"]):
    """A store root: blobs, trees, the index and the roots that keep them alive."""

    def __init__(self) -> None:  # use Store.open
        raise TypeError("use Store.open(root)")

    @classmethod
    def open(
        cls,
        root: Path | str,
        *,
        digest_function: str = BLAKE3,
        map_size: int = 1 << 40,
        link_limit: int | None = None,
        lease_seconds: float = 600.0,
        grace_seconds: float = 60.0,
        flush_interval: float = 30.0,
        ingest_workers: int | None = None,
    ) -> "Store":
        """Opens (creating if needed) the store at ``root``.

        ``grace_seconds``: blobs put in this process less than that long ago are
        never swept, so a put followed by ``put_root`` outside ``ingesting()``
        is safe as long as the gap is shorter. ``lease_seconds``: how long a
        ``get_root`` hit (and ``lease`` without ``seconds``) protects what it
        names. Raises StoreLockedError when another process holds ``root``.
        """
        self = object.__new__(cls)
        self.root = Path(root).absolute()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = RootLock(self.root)
        self._lock.acquire()
        try:
            self._open(digest_function, map_size, link_limit, lease_seconds, grace_seconds, flush_interval, ingest_workers)
        except BaseException:
            self._lock.release()
            raise
        return self

    def _open(
        self,
        digest_function: str,
        map_size: int,
        link_limit: int | None,
        lease_seconds: float,
        grace_seconds: float,
        flush_interval: float,
        ingest_workers: int | None,
    ) -> None:
        for name in LAYOUT:
            (self.root / name).mkdir(exist_ok=True)
        cas = self.root / "cas"
        for i in range(256):
            (cas / f"{i:02x}").mkdir(exist_ok=True)
        cleared = clear_dir(self.root / "tmp")
        if cleared:
            log.info("cleared %d leftover temp files in %s", cleared, self.root / "tmp")
        self.hasher = Hasher(digest_function)
        self.index = Index(
            self.root / "index",
            map_size=map_size,
            flush_interval=flush_interval,
            syncer=lambda: syncfs(self.root),
        )
        try:
            self._check_function(digest_function)
            self.protection = Protection(grace_seconds=grace_seconds)
            self.lease_seconds = lease_seconds
            self.blobs = BlobStore(self.root, self.index, self.hasher, self.protection, link_limit=link_limit)
            self.trees = TreeStore(self.root, self.index, self.blobs, self.protection, workers=ingest_workers)
            self.roots = RootStore(self.index, self.blobs, self.trees, self.protection, lease_seconds=lease_seconds)
            # The named record stores: callers use these, never a database name.
            self.actions = ActionRoots(self.roots, "actions")
            self.deps = RootRecords(self.roots, "deps")
            self.resolutions = RootRecords(self.roots, "resolutions")
            self.vitecache = AppScopedRoots(self.roots, "vitecache")
            self.packages = RootRecords(self.roots, "packages")  # by sha512 integrity (hex): cached/packages/
            self.apps = AppRecords(self.index)
            self.app_counts = AppCounts(self.index)
            self.watermarks = Watermarks(self.index)
            self.deployments = Deployments(self.index)
            self.histories = AppHistories(self.index)
            self.tombstones = Tombstones(self.index)
            self.lookups = Lookups(self.index, self.roots, self.apps, self.watermarks, self.blobs)
            self._collector = Collector(self.root, self.index, self.blobs, self.trees, self.roots, self.protection)
            self.trees.recover()
            self.blobs.totals.ensure()
        except BaseException:
            self.index.close()
            raise
        self._closed = False
        log.info("opened store %s (%s)", self.root, digest_function)

    def _check_function(self, function: str) -> None:
        recorded = self.index.get("meta", b"digest_function")
        if recorded is None:
            self.index.put("meta", b"digest_function", function.encode()).result()
        elif recorded.decode() != function:
            raise ValueError(
                f"store {self.root} holds {recorded.decode()} digests; it cannot be opened with {function}"
            )

    def close(self) -> None:
        """Flushes last-access times and pending blob registrations, stops the writer, unlocks."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self.index.close()
        self._lock.release()
        log.info("closed store %s", self.root)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- roots ----------------------------------------------------------------------
    def put_root(
        self,
        kind: str,
        key: bytes,
        value: bytes,
        *,
        blobs: Iterable[Digest] = (),
        trees: Iterable[Digest] = (),
        owner: str = "",
    ) -> concurrent.futures.Future[RootEntry]:
        return self.roots.put(kind, key, value, blobs=blobs, trees=trees, owner=owner)

    def get_root(self, kind: str, key: bytes, *, lease: bool = True) -> RootEntry | None:
        """No LMDB write. A hit leases what the entry names for ``lease_seconds`` (``lease=False`` to skip)."""
        return self.roots.get(kind, key, lease=lease)

    def delete_roots(self, kind: str, keys: Iterable[bytes]) -> concurrent.futures.Future[int]:
        return self.roots.delete(kind, keys)

    def iter_roots(self, kind: str | None = None) -> Iterator[RootEntry]:
        return self.roots.iter(kind)

    def set_purge_watermark(self, owner: str, ns: int | None = None) -> concurrent.futures.Future[None]:
        return self.watermarks.set(owner, ns)

    def purge_watermark(self, owner: str) -> int:
        return self.watermarks.get(owner)

    # -- protection -------------------------------------------------------------------
    def lease(
        self, digests: Iterable[Digest] = (), trees: Iterable[Digest] = (), seconds: float | None = None
    ) -> None:
        """Keeps these blobs (and trees with all their files) from the sweep until the lease ends."""
        self.protection.lease(digests, trees, self.lease_seconds if seconds is None else seconds)

    def ingesting(self) -> AbstractContextManager[int]:
        """While the block runs, the sweep keeps every blob put since it started."""
        return self.protection.ingesting()

    def flush(self) -> concurrent.futures.Future[None]:
        """A commit point: resolves when every blob put so far is durable and registered."""
        return self.index.flush()

    # -- garbage collection and checks ----------------------------------------------------
    def collect(self, max_bytes: int | None = None, *, dry_run: bool = False) -> CollectReport:
        return self._collector.collect(max_bytes, dry_run=dry_run)

    def sweep(self) -> CollectReport:
        return self._collector.collect(None)

    def verify(self, repair: bool = False) -> VerifyReport:
        return verify_store(self, repair=repair)

    def stats(self) -> StoreStats:
        """O(1): the running totals and LMDB's own entry counts, in one read transaction."""
        with self.index.read() as txn:
            totals = self.blobs.totals.read(txn)
            roots = {kind: int(txn.stat(self.index.db(kind))["entries"]) for kind in ROOT_KINDS}
            trees = int(txn.stat(self.index.db("trees"))["entries"])
            apps = int(txn.stat(self.index.db("apps"))["entries"])
        if totals is None:  # only while a store made before the totals is being opened
            self.blobs.totals.ensure()
            return self.stats()
        return StoreStats(
            blobs=totals[0],
            bytes=totals[1],
            roots=roots,
            trees_materialised=trees,
            pending_blobs=self.blobs.pending_count(),
            map_size=int(self.index.env.info()["map_size"]),
            apps=apps,
        )

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"
