"""Named record stores: one typed object per database of the index, so no caller names one.

``store.actions``, ``store.deps``, ``store.resolutions``, ``store.vitecache``
and ``store.packages`` (registry packages by integrity) are roots (they keep blobs alive: see ``roots.py``); ``store.apps`` holds each
app's last build, ``store.app_counts`` each app's builds by outcome (kept
in memory, written in batches by the writer), ``store.watermarks`` the purge watermarks,
``store.deployments`` the deployed versions, ``store.histories`` the app
histories that explain reads, and ``store.tombstones`` (``tombstones.py``)
what eviction, purge and repair removed. ``Lookups.action`` answers a build's
whole lookup (app record, action entry, purge watermark, blob ownership) in
one read transaction.

This module must never write from a caller's thread (writes are futures the
index's writer resolves), and never hold a read transaction across a call back
into its caller.
"""

from __future__ import annotations

import concurrent.futures
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import lmdb

from cached.digest import Digest
from cached.store.blobs import BlobStore
from cached.store.index import Index
from cached.store.roots import RootEntry, RootStore
from cached.v1 import operate_pb2, records_pb2

_NS = struct.Struct(">Q")
HISTORY_PREFIX = b"history\x00"  # in ``meta``, beside the tombstones
APP_COUNT_PREFIX = b"appcount\x00"  # in ``meta``: an app's builds, action hits, failures, last build
_COUNTS = struct.Struct(">QQQQ")


class RootRecords:
    """One kind of root: its entries name the blobs and trees they keep alive."""

    def __init__(self, roots: RootStore, kind: str) -> None:
        self._roots = roots
        self.kind = kind

    def get(self, key: bytes, *, lease: bool = True) -> RootEntry | None:
        """No write; a hit leases what the entry names (``lease=False`` to skip) and is remembered for LRU."""
        return self._roots.get(self.kind, key, lease=lease)

    def peek(self, key: bytes) -> RootEntry | None:
        """The entry as stored: no lease, no access time (for reports)."""
        return self._roots.peek(self.kind, key)

    def put(
        self, key: bytes, value: bytes, *, blobs: Iterable[Digest] = (), trees: Iterable[Digest] = (), owner: str = "",
    ) -> concurrent.futures.Future[RootEntry]:
        """Resolves once committed, after the blobs it names are durable."""
        return self._roots.put(self.kind, key, value, blobs=blobs, trees=trees, owner=owner)

    def delete(self, keys: Iterable[bytes]) -> concurrent.futures.Future[int]:
        return self._roots.delete(self.kind, keys)

    def iter(self) -> Iterator[RootEntry]:
        return self._roots.iter(self.kind)

    def count(self) -> int:
        return self._roots.count(self.kind)


class ActionRoots(RootRecords):
    """Action results, scoped to the tenant: another tenant's identical inputs are another entry."""

    @staticmethod
    def key(tenant: str, action_key: str) -> bytes:
        return f"{tenant}/{action_key}".encode()


class AppScopedRoots(RootRecords):
    """Roots kept per app (the Vite cache)."""

    @staticmethod
    def key(tenant: str, app: str) -> bytes:
        return f"{tenant}/{app}".encode()


class AppRecords:
    """``tenant/app`` -> the app's last build (``records_pb2.AppRecord``)."""

    def __init__(self, index: Index) -> None:
        self._index = index
        self._db = index.db("apps")

    @staticmethod
    def key(tenant: str, app: str) -> bytes:
        return f"{tenant}/{app}".encode()

    def get(self, tenant: str, app: str) -> records_pb2.AppRecord | None:
        with self._index.read() as txn:
            return self.read_in(txn, tenant, app)

    def read_in(self, txn: lmdb.Transaction, tenant: str, app: str) -> records_pb2.AppRecord | None:
        raw = txn.get(self.key(tenant, app), db=self._db)
        return records_pb2.AppRecord.FromString(raw) if raw is not None else None

    def put(self, tenant: str, app: str, record: records_pb2.AppRecord) -> concurrent.futures.Future[None]:
        key, value, db = self.key(tenant, app), record.SerializeToString(), self._db

        def fn(txn: lmdb.Transaction) -> None:
            txn.put(key, value, db=db)

        return self._index.submit(fn)

    def all(self) -> dict[str, records_pb2.AppRecord]:
        """Every app's record, by "tenant/app"."""
        return {k.decode(): records_pb2.AppRecord.FromString(v) for k, v in self._index.items("apps")}

    def count(self) -> int:
        return self._index.count("apps")


@dataclass
class AppCount:
    """An app's builds since its first (across restarts): answered, of which action hits, and failed."""

    builds: int = 0
    action_hits: int = 0
    failed: int = 0
    last_build_unix_ms: int = 0

    def add(self, other: "AppCount") -> None:
        self.builds += other.builds
        self.action_hits += other.action_hits
        self.failed += other.failed
        self.last_build_unix_ms = max(self.last_build_unix_ms, other.last_build_unix_ms)


class AppCounts:
    """``tenant/app`` -> its ``AppCount``: ``add`` only counts in memory (a hit never writes); the
    writer folds what accumulated into the index every flush interval and at close."""

    def __init__(self, index: Index) -> None:
        self._index = index
        self._meta = index.db("meta")
        self._pending: dict[str, AppCount] = {}
        self._inflight: dict[str, AppCount] = {}  # handed to the writer, not yet in the index
        self._lock = threading.Lock()
        index.add_periodic(self._flush)

    def add(self, owner: str, *, builds: int = 0, action_hits: int = 0, failed: int = 0, last_build_unix_ms: int = 0) -> None:
        with self._lock:
            self._pending.setdefault(owner, AppCount()).add(AppCount(builds, action_hits, failed, last_build_unix_ms))

    def all(self) -> dict[str, AppCount]:
        """Every app's counts, by "tenant/app": what the index holds plus what is still in memory."""
        out = {k[len(APP_COUNT_PREFIX):].decode(): AppCount(*_COUNTS.unpack(v)) for k, v in self._index.items("meta", APP_COUNT_PREFIX)}
        with self._lock:
            for pending in (self._inflight, self._pending):
                for owner, c in pending.items():
                    out.setdefault(owner, AppCount()).add(c)
        return out

    def _flush(self) -> Callable[[lmdb.Transaction], None] | None:
        with self._lock:
            if not self._pending:
                return None
            pending, self._pending = self._pending, {}
            self._inflight = pending
        meta, lock = self._meta, self._lock

        def fn(txn: lmdb.Transaction) -> None:
            for owner, c in pending.items():
                key = APP_COUNT_PREFIX + owner.encode()
                raw = txn.get(key, db=meta)
                stored = AppCount(*_COUNTS.unpack(raw)) if raw is not None else AppCount()
                stored.add(c)
                txn.put(key, _COUNTS.pack(stored.builds, stored.action_hits, stored.failed, stored.last_build_unix_ms), db=meta)
            with lock:
                self._inflight = {}

        return fn


class Watermarks:
    """Purge watermarks: lookups for an owner ("tenant/app") ignore roots created before its mark."""

    def __init__(self, index: Index) -> None:
        self._index = index
        self._db = index.db("watermarks")

    def set(self, owner: str, ns: int | None = None) -> concurrent.futures.Future[None]:
        value = _NS.pack(time.time_ns() if ns is None else ns)
        return self._index.put("watermarks", owner.encode(), value)

    def get(self, owner: str) -> int:
        with self._index.read() as txn:
            return self.read_in(txn, owner)

    def read_in(self, txn: lmdb.Transaction, owner: str) -> int:
        raw = txn.get(owner.encode(), db=self._db)
        return _NS.unpack(raw)[0] if raw is not None else 0


class Deployments:
    """The deployer's version lists, by its own keys (a ``HistoryStore``: blocking calls)."""

    def __init__(self, index: Index) -> None:
        self._index = index

    def get(self, key: bytes) -> bytes | None:
        return self._index.get("deployments", key)

    def put(self, key: bytes, value: bytes) -> None:
        self._index.put("deployments", key, value).result()


class AppHistories:
    """Per app, the last two recorded builds (``operate_pb2.AppHistory``), for explain."""

    def __init__(self, index: Index) -> None:
        self._index = index
        self._meta = index.db("meta")

    def get(self, owner: str) -> operate_pb2.AppHistory | None:
        raw = self._index.get("meta", HISTORY_PREFIX + owner.encode())
        return operate_pb2.AppHistory.FromString(raw) if raw is not None else None

    def put(self, owner: str, history: operate_pb2.AppHistory) -> concurrent.futures.Future[None]:
        key, value, meta = HISTORY_PREFIX + owner.encode(), history.SerializeToString(), self._meta

        def fn(txn: lmdb.Transaction) -> None:
            txn.put(key, value, db=meta)

        return self._index.submit(fn)


@dataclass(frozen=True)
class ActionLookup:
    """What one read transaction found for a build."""

    app: records_pb2.AppRecord | None  # the app's last build
    action: RootEntry | None  # the action's entry (leased, its access time noted), or None
    watermark: int  # the app's purge watermark, 0 when it was never purged
    unowned: tuple[Digest, ...]  # of the digests asked about, those the tenant may not build from

    @property
    def purged(self) -> bool:
        return self.action is not None and self.action.created_ns < self.watermark


class Lookups:
    """Reads across databases in one transaction."""

    def __init__(self, index: Index, roots: RootStore, apps: AppRecords, watermarks: Watermarks, blobs: BlobStore) -> None:
        self._index = index
        self._roots = roots
        self._apps = apps
        self._watermarks = watermarks
        self._blobs = blobs

    def action(
        self, tenant: str, app: str, action_key: str | None, *, owned: Iterable[Digest] = (),
    ) -> ActionLookup:
        """The app's record, the action's entry (``action_key=None`` skips it), the app's watermark,
        and which of ``owned`` the tenant may not use: one read transaction, no write."""
        owner = f"{tenant}/{app}"
        key = ActionRoots.key(tenant, action_key) if action_key is not None else None
        digests = list(owned)
        with self._index.read() as txn:
            record = self._apps.read_in(txn, tenant, app)
            raw = self._roots.read_in(txn, "actions", key) if key is not None else None
            watermark = self._watermarks.read_in(txn, owner)
            allowed = self._blobs.owned_in(txn, tenant, digests) if digests else set()
        entry = self._roots.found("actions", key, raw) if raw is not None and key is not None else None
        return ActionLookup(record, entry, watermark, tuple(d for d in digests if d not in allowed))
