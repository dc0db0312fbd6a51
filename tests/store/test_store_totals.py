"""The store's totals: running counters beside the blob records, so stats never walks them."""

from __future__ import annotations

import os
from pathlib import Path

from cached.store import Store
from cached.store.blobs import unpack_record
from cached.store.totals import KEY

from store_helpers import make_sample_tree


def scanned(store: Store) -> tuple[int, int]:
    """What a full walk of the blob records finds (what stats did before the totals)."""
    sizes = [unpack_record(v)[0] for _, v in store.index.items("blobs")]
    return len(sizes), sum(sizes)


def test_totals_follow_puts_sweeps_and_repairs_without_a_scan(store: Store, tmp_path: Path) -> None:
    kept = store.blobs.put_bytes(os.urandom(1000))
    store.put_root("actions", b"t/k", b"v", blobs=[kept]).result()
    for i in range(20):
        store.blobs.put_bytes(f"orphan {i}".encode())
    store.blobs.put_bytes(f"orphan {0}".encode())  # again: counted once
    digest, _ = store.trees.ingest(make_sample_tree(tmp_path / "tree"))
    store.put_root("deps", b"d", b"v", trees=[digest]).result()
    store.flush().result()
    assert (store.stats().blobs, store.stats().bytes) == scanned(store) and store.stats().blobs > 20

    store.sweep()  # the orphans go
    assert (store.stats().blobs, store.stats().bytes) == scanned(store)
    assert store.stats().blobs < 20

    reads = store.index.read_txn_count
    stats = store.stats()
    assert store.index.read_txn_count - reads == 1  # totals, entries by kind, trees and apps: one read
    assert stats.roots["actions"] == 1 and stats.roots["deps"] == 1

    os.chmod(store.blobs.primary(kept), 0o644)
    store.blobs.primary(kept).write_bytes(b"x" * 1000)  # corrupt, same size
    store.verify(repair=True)
    assert (store.stats().blobs, store.stats().bytes) == scanned(store)


def test_a_store_without_totals_counts_them_once_at_open(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s", grace_seconds=0, lease_seconds=0) as store:
        for i in range(10):
            store.blobs.put_bytes(os.urandom(100 + i))
        store.flush().result()
        expected = scanned(store)
        meta = store.index.db("meta")
        store.index.submit(lambda txn: txn.delete(KEY, db=meta)).result()  # as a store made before the totals
    with Store.open(tmp_path / "s", grace_seconds=0, lease_seconds=0) as store:
        assert (store.stats().blobs, store.stats().bytes) == expected == (10, sum(100 + i for i in range(10)))
        store.blobs.put_bytes(b"one more")
        store.flush().result()
        assert store.stats().blobs == 11
