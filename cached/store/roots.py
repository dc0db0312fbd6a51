"""Roots: the action, deps, resolution and vitecache entries that keep blobs alive.

A root names blobs and tree manifests; the sweep keeps exactly what some root
(or a lease, or an in-flight ingest) names. Each root has a last-access time
used for LRU eviction. A lookup must write nothing, so the time of a hit lives
in memory and the writer thread flushes the accumulated times in one
transaction every flush interval and at close.

This module must never write to LMDB from ``get`` (tests count the write
transactions), and never commit a root before the blobs it names are durable
(the index's pre-commit hook syncs pending blobs first).
"""

from __future__ import annotations

import concurrent.futures
import logging
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import lmdb

from cached.digest import Digest
from cached.failpoints import failpoint
from cached.store.blobs import BlobStore
from cached.store.errors import BlobNotFound
from cached.store.index import ROOT_DBS, Index
from cached.store.protect import Protection
from cached.store.trees import TreeStore
from cached.v1 import store_pb2

log = logging.getLogger("cached.store.roots")

ROOT_KINDS = ROOT_DBS
_NS = struct.Struct(">Q")


@dataclass(frozen=True)
class RootEntry:
    kind: str
    key: bytes
    value: bytes
    blobs: tuple[Digest, ...]
    trees: tuple[Digest, ...]
    owner: str
    created_ns: int
    last_access_ns: int
    size: int


def _access_key(kind: str, key: bytes) -> bytes:
    return kind.encode() + b"\x00" + key


def _check_kind(kind: str) -> None:
    if kind not in ROOT_KINDS:
        raise ValueError(f"unknown root kind {kind!r}; one of {', '.join(ROOT_KINDS)}")


def decode(kind: str, key: bytes, raw: bytes, last_access_ns: int) -> RootEntry:
    record = store_pb2.RootRecord()
    record.ParseFromString(raw)
    return RootEntry(
        kind=kind,
        key=key,
        value=record.value,
        blobs=tuple(Digest.from_key(k) for k in record.blobs),
        trees=tuple(Digest.from_key(k) for k in record.trees),
        owner=record.owner,
        created_ns=record.created_ns,
        last_access_ns=max(last_access_ns, record.created_ns),
        size=record.size,
    )


class RootStore:
    def __init__(
        self,
        index: Index,
        blobs: BlobStore,
        trees: TreeStore,
        protection: Protection,
        *,
        lease_seconds: float,
    ) -> None:
        self.index = index
        self.blobs = blobs
        self.trees = trees
        self.protection = protection
        self.lease_seconds = lease_seconds
        self._access: dict[tuple[str, bytes], int] = {}
        self._access_lock = threading.Lock()
        self._access_db = index.db("access")
        index.add_periodic(self._flush_access)

    # -- writes -----------------------------------------------------------------------
    def put(
        self,
        kind: str,
        key: bytes,
        value: bytes,
        *,
        blobs: Iterable[Digest] = (),
        trees: Iterable[Digest] = (),
        owner: str = "",
    ) -> concurrent.futures.Future[RootEntry]:
        """Records a root; the Future resolves once it is committed (after its blobs are durable)."""
        failpoint("root.before_put")
        _check_kind(kind)
        blobs = tuple(dict.fromkeys(blobs))
        trees = tuple(dict.fromkeys(trees))
        ident = self.protection.begin_root(blobs, trees)
        try:
            for d in blobs:
                if not self.blobs.has_content(d):
                    raise BlobNotFound(f"root {kind}/{key!r} names blob {d}, which is not in the store")
            size = sum(d.size for d in blobs) + sum(self.trees.size(t) for t in trees)
        except BaseException:
            self.protection.end_root(ident)
            raise
        now = time.time_ns()
        record = store_pb2.RootRecord(
            value=value,
            blobs=[d.key for d in blobs],
            trees=[t.key for t in trees],
            owner=owner,
            created_ns=now,
            size=size,
        ).SerializeToString(deterministic=True)
        entry = RootEntry(kind, key, value, blobs, trees, owner, now, now, size)
        db = self.index.db(kind)
        access_db = self._access_db

        def fn(txn: lmdb.Transaction) -> RootEntry:
            txn.put(key, record, db=db)
            txn.put(_access_key(kind, key), _NS.pack(now), db=access_db)
            return entry

        future = self.index.submit(fn)
        future.add_done_callback(lambda _: self.protection.end_root(ident))
        return future

    def delete(self, kind: str, keys: Iterable[bytes]) -> concurrent.futures.Future[int]:
        _check_kind(kind)
        keys = list(keys)
        with self._access_lock:
            for k in keys:
                self._access.pop((kind, k), None)
        db = self.index.db(kind)
        access_db = self._access_db

        def fn(txn: lmdb.Transaction) -> int:
            n = 0
            for k in keys:
                if txn.delete(k, db=db):
                    n += 1
                txn.delete(_access_key(kind, k), db=access_db)
            return n

        return self.index.submit(fn)

    def delete_in_txn(self, txn: lmdb.Transaction, kind: str, key: bytes) -> bool:
        with self._access_lock:
            self._access.pop((kind, key), None)
        txn.delete(_access_key(kind, key), db=self._access_db)
        return bool(txn.delete(key, db=self.index.db(kind)))

    # -- reads ------------------------------------------------------------------------
    def get(self, kind: str, key: bytes, *, lease: bool = True) -> RootEntry | None:
        """One read transaction, no write; the hit's time goes to memory, its refs get a lease."""
        _check_kind(kind)
        with self.index.read() as txn:
            raw = self.read_in(txn, kind, key)
        return self.found(kind, key, raw, lease=lease) if raw is not None else None

    def read_in(self, txn: lmdb.Transaction, kind: str, key: bytes) -> bytes | None:
        """The stored record, read inside the caller's transaction (``found`` turns it into a hit)."""
        raw = txn.get(key, db=self.index.db(kind))
        return bytes(raw) if raw is not None else None

    def found(self, kind: str, key: bytes, raw: bytes, *, lease: bool = True) -> RootEntry:
        """A lookup's hit, after its transaction: its time goes to memory, its refs get a lease."""
        now = time.time_ns()
        with self._access_lock:
            self._access[(kind, key)] = now
        entry = decode(kind, key, raw, now)
        if lease and self.lease_seconds > 0 and (entry.blobs or entry.trees):
            self.protection.lease(entry.blobs, entry.trees, self.lease_seconds)
        return entry

    def peek(self, kind: str, key: bytes) -> RootEntry | None:
        """The entry as stored, without a lease or a new access time (for reports, not for use)."""
        _check_kind(kind)
        with self.index.read() as txn:
            raw = self.read_in(txn, kind, key)
            if raw is None:
                return None
            stored = txn.get(_access_key(kind, key), db=self._access_db)
        return decode(kind, key, raw, self.last_access(kind, key, _NS.unpack(stored)[0] if stored is not None else 0))

    def last_access(self, kind: str, key: bytes, stored: int) -> int:
        return max(stored, self._access.get((kind, key), 0))

    def iter(self, kind: str | None = None) -> Iterator[RootEntry]:
        """A snapshot of the roots (copied out first: no read transaction outlives a yield)."""
        kinds = ROOT_KINDS if kind is None else (kind,)
        for k in kinds:
            _check_kind(k)
        for k in kinds:
            with self.index.read() as txn:
                db = self.index.db(k)
                rows = [(bytes(key), bytes(raw)) for key, raw in txn.cursor(db=db)]
                stored = {}
                for key, _ in rows:
                    a = txn.get(_access_key(k, key), db=self._access_db)
                    stored[key] = _NS.unpack(a)[0] if a is not None else 0
            for key, raw in rows:
                yield decode(k, key, raw, self.last_access(k, key, stored[key]))

    def count(self, kind: str) -> int:
        return self.index.count(kind)

    # -- last-access flushing ---------------------------------------------------------------
    def _flush_access(self) -> Callable[[lmdb.Transaction], None] | None:
        if not self._access:
            return None
        with self._access_lock:
            pending, self._access = self._access, {}
        access_db = self._access_db
        index = self.index

        def fn(txn: lmdb.Transaction) -> None:
            for (kind, key), ns in pending.items():
                if txn.get(key, db=index.db(kind)) is None:
                    continue  # deleted meanwhile: do not resurrect its time
                akey = _access_key(kind, key)
                old = txn.get(akey, db=access_db)
                if old is None or _NS.unpack(old)[0] < ns:
                    txn.put(akey, _NS.pack(ns), db=access_db)

        log.debug("flushing %d last-access times", len(pending))
        return fn

