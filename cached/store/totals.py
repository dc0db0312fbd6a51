"""The store's running totals: blobs and bytes registered in the index, kept beside them.

``stats()`` answers every Prometheus scrape and every collection check, so it
must not walk the ``blobs`` database. The totals live in the ``meta``
database and change in the same write transaction as the blob records they
count (registration in the pre-commit hook, deletion by the sweep or a
repair), so they are exactly as durable as the records. A store without them
(made before they existed) gets them from one full scan at open; ``verify
--repair`` recounts them.

This module must never change a blob record without adjusting the totals in
the same transaction, and never be written outside the index's writer thread.
"""

from __future__ import annotations

import logging
import struct

import lmdb

from cached.store.index import Index

log = logging.getLogger("cached.store.totals")

KEY = b"totals"
_TOTALS = struct.Struct(">QQ")  # blobs, bytes
_RECORD = struct.Struct(">QQ")  # a blob record: size, created (see blobs.py)


class Totals:
    def __init__(self, index: Index) -> None:
        self.index = index
        self._meta = index.db("meta")
        self._blobs = index.db("blobs")

    # -- inside a write transaction -------------------------------------------------------
    def add(self, txn: lmdb.Transaction, blobs: int, size: int) -> None:
        """Adds (or, negative, removes) ``blobs`` records of ``size`` bytes in all."""
        if not blobs and not size:
            return
        old = self.read(txn)
        if old is None:
            return  # not counted yet: the one full count (``ensure``) takes these records in
        count, total = old
        txn.put(KEY, _TOTALS.pack(max(0, count + blobs), max(0, total + size)), db=self._meta)

    def register(self, txn: lmdb.Transaction, key: bytes, record: bytes) -> bool:
        """Puts a blob record unless one is there; counts it when it is new."""
        if txn.put(key, record, db=self._blobs, overwrite=False):
            self.add(txn, 1, _RECORD.unpack(record)[0])
            return True
        return False

    def forget(self, txn: lmdb.Transaction, keys: list[bytes] | set[bytes]) -> int:
        """Deletes these blob records and takes them off the totals; returns how many were there."""
        n = size = 0
        for key in keys:
            raw = txn.get(key, db=self._blobs)
            if raw is None:
                continue
            size += _RECORD.unpack(raw)[0]
            txn.delete(key, db=self._blobs)
            n += 1
        self.add(txn, -n, -size)
        return n

    def recount(self, txn: lmdb.Transaction) -> tuple[int, int]:
        """A full scan of the blob records: the totals from scratch."""
        count = total = 0
        for _, raw in txn.cursor(db=self._blobs):
            count += 1
            total += _RECORD.unpack(raw)[0]
        txn.put(KEY, _TOTALS.pack(count, total), db=self._meta)
        return count, total

    # -- reads -------------------------------------------------------------------------------
    def read(self, txn: lmdb.Transaction) -> tuple[int, int] | None:
        raw = txn.get(KEY, db=self._meta)
        return _TOTALS.unpack(raw) if raw is not None else None

    def ensure(self) -> None:
        """At open: counts once when the store has no totals yet (it was made before them)."""
        with self.index.read() as txn:
            if self.read(txn) is not None:
                return

        def fn(txn: lmdb.Transaction) -> tuple[int, int]:
            found = self.read(txn)
            return found if found is not None else self.recount(txn)

        count, total = self.index.submit(fn).result()
        log.info("counted the store's totals once", extra={"blobs": count, "bytes": total})
