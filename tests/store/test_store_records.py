"""The named record stores, and a build's whole lookup in one read transaction."""

from __future__ import annotations

from cached.store import Store
from cached.v1 import records_pb2


def test_one_lookup_reads_the_app_the_action_the_watermark_and_ownership_at_once(store: Store) -> None:
    owned = store.blobs.put_bytes(b"mine")
    other = store.blobs.put_bytes(b"not mine")
    store.blobs.note_owner("t", [owned]).result()
    key = store.actions.key("t", "a1")
    store.actions.put(key, b"result", blobs=[owned], owner="t/app").result()
    store.apps.put("t", "app", records_pb2.AppRecord(last_action_key="a1", builds=1)).result()

    reads, writes = store.index.read_txn_count, store.index.write_txn_count
    found = store.lookups.action("t", "app", "a1", owned=[owned, other])
    assert store.index.read_txn_count - reads == 1 and store.index.write_txn_count == writes
    assert found.app is not None and found.app.last_action_key == "a1"
    assert found.action is not None and found.action.value == b"result" and not found.purged
    assert found.unowned == (other,)

    store.watermarks.set("t/app").result()
    assert store.lookups.action("t", "app", "a1").purged  # this app ignores it now...
    assert not store.lookups.action("t", "other", "a1").purged  # ...another app of the tenant still hits
    assert store.lookups.action("t", "app", None).action is None  # a forced build reads the app's record only
    assert store.lookups.action("t", "new", "a2") == type(found)(None, None, 0, ())


def test_named_record_stores_round_trip(store: Store) -> None:
    store.deployments.put(b"t/app/local", b"versions")
    assert store.deployments.get(b"t/app/local") == b"versions"
    assert store.apps.get("t", "none") is None and store.apps.count() == 0
    store.apps.put("t", "app", records_pb2.AppRecord(last_action_key="k")).result()
    assert list(store.apps.all()) == ["t/app"] and store.apps.count() == 1
    store.vitecache.put(store.vitecache.key("t", "app"), b"cache").result()
    assert store.vitecache.peek(b"t/app") is not None and [e.key for e in store.vitecache.iter()] == [b"t/app"]
    assert store.vitecache.delete([b"t/app"]).result() == 1 and store.vitecache.count() == 0
    assert store.watermarks.get("t/app") == 0


def test_app_counts_add_in_memory_and_the_writer_keeps_them_across_a_reopen(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store.open(tmp_path / "s", flush_interval=3600.0)
    try:
        writes = store.index.write_txn_count
        for hit in (False, True, True):
            store.app_counts.add("bars/w1", builds=1, action_hits=int(hit), last_build_unix_ms=5)
        store.app_counts.add("bars/w2", builds=1, failed=1, last_build_unix_ms=7)
        assert store.index.write_txn_count == writes  # counting never writes
        counts = store.app_counts.all()  # what is still in memory counts
        assert (counts["bars/w1"].builds, counts["bars/w1"].action_hits, counts["bars/w2"].failed) == (3, 2, 1)
    finally:
        store.close()  # the writer folds them in on close
    again = Store.open(tmp_path / "s", flush_interval=3600.0)
    try:
        again.app_counts.add("bars/w1", builds=1, action_hits=1, last_build_unix_ms=9)
        counts = again.app_counts.all()
        assert (counts["bars/w1"].builds, counts["bars/w1"].action_hits, counts["bars/w1"].last_build_unix_ms) == (4, 3, 9)
        assert (counts["bars/w2"].builds, counts["bars/w2"].failed) == (1, 1)
    finally:
        again.close()
    third = Store.open(tmp_path / "s")
    try:
        assert third.app_counts.all()["bars/w1"].builds == 4
    finally:
        third.close()
