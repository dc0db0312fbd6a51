"""Eviction, sweep, leases, in-flight ingests, verify and repair."""

from __future__ import annotations

import os
import time
from pathlib import Path

from cached.digest import Digest
from cached.store import Store

from store_helpers import make_sample_tree

KB = 1000


def _root_with_blob(store: Store, key: bytes, size: int = KB) -> Digest:
    blob = store.blobs.put_bytes(os.urandom(size))
    store.put_root("actions", key, b"v", blobs=[blob]).result()
    return blob


def _cas_bytes(store: Store) -> int:
    return sum(e.stat().st_size for d in (store.root / "cas").iterdir() for e in os.scandir(d))


def test_eviction_keeps_most_recently_used_and_ends_under_cap(store: Store) -> None:
    blobs = {k: _root_with_blob(store, k) for k in (b"r0", b"r1", b"r2", b"r3", b"r4")}
    for key in (b"r3", b"r1", b"r4", b"r0", b"r2"):  # r2 most recent, r3 least
        time.sleep(0.002)
        assert store.get_root("actions", key) is not None
    report = store.collect(max_bytes=3500)  # low watermark 3150: room for three 1000-byte roots
    left = {e.key for e in store.iter_roots()}
    assert left == {b"r2", b"r0", b"r4"}
    assert report.roots_evicted == 2 and report.blobs_deleted == 2
    assert report.bytes_after <= 3500 and _cas_bytes(store) <= 3500
    for key, blob in blobs.items():
        assert store.blobs.has(blob) == (key in left)
        assert store.blobs.verify(blob) == (key in left)


def test_no_eviction_below_the_high_watermark(store: Store) -> None:
    for k in (b"a", b"b", b"c"):
        _root_with_blob(store, k)
    orphan = store.blobs.put_bytes(b"nobody names me")
    report = store.collect(max_bytes=10 * KB)
    assert report.roots_evicted == 0
    assert len(list(store.iter_roots())) == 3
    assert not store.blobs.has(orphan)  # the sweep still reclaims unreferenced blobs


def test_dry_run_changes_nothing(store: Store) -> None:
    blob = _root_with_blob(store, b"a")
    orphan = store.blobs.put_bytes(b"orphan")
    report = store.collect(max_bytes=10, dry_run=True)
    assert report.roots_evicted == 1 and report.blobs_deleted == 2
    assert store.get_root("actions", b"a") is not None
    assert store.blobs.has(blob) and store.blobs.has(orphan)


def test_leased_blobs_and_trees_survive(store: Store, tmp_path: Path) -> None:
    leased = _root_with_blob(store, b"old")
    digest, tree = store.trees.ingest(make_sample_tree(tmp_path / "src"))
    store.put_root("deps", b"deps", b"", trees=[digest]).result()
    loose = store.blobs.put_bytes(b"loose")
    store.lease([leased], trees=[digest], seconds=60)
    report = store.collect(max_bytes=1)
    # Evicting a root whose every blob is leased would lose the entry and free nothing.
    assert report.roots_evicted == 0
    assert store.get_root("deps", b"deps", lease=False) is not None
    assert store.blobs.verify(leased)
    assert not store.blobs.has(loose)
    assert store.blobs.has(digest)
    for node in tree.files:
        assert store.blobs.verify(Digest.from_proto(node.digest), node.executable)


def test_a_hit_leases_its_outputs(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s", grace_seconds=0, lease_seconds=60) as store:
        blob = _root_with_blob(store, b"hit")
        assert store.get_root("actions", b"hit") is not None  # leases for 60 s
        store.delete_roots("actions", [b"hit"]).result()
        store.collect(max_bytes=1)
        assert store.blobs.verify(blob)


def test_expired_lease_protects_nothing(store: Store) -> None:
    blob = store.blobs.put_bytes(b"short lease")
    store.lease([blob], seconds=0.01)
    time.sleep(0.05)
    store.sweep()
    assert not store.blobs.has(blob)


def test_blobs_newer_than_the_oldest_ingest_are_kept(store: Store, tmp_path: Path) -> None:
    before = store.blobs.put_bytes(b"put before the ingest began")
    time.sleep(0.01)
    with store.ingesting():
        during = store.blobs.put_bytes(b"put during the ingest")
        digest, tree = store.trees.ingest(make_sample_tree(tmp_path / "src"))
        report = store.collect(max_bytes=1)
        assert store.blobs.has(during) and store.blobs.has(digest)
        assert all(store.blobs.verify(Digest.from_proto(f.digest), f.executable) for f in tree.files)
        assert not store.blobs.has(before)
        assert report.blobs_kept_protected >= 2
        store.put_root("deps", b"d", b"", trees=[digest]).result()
    store.sweep()
    assert not store.blobs.has(during)
    assert store.blobs.has(digest)
    # An existing blob put again during an ingest is revived, whatever its age.
    old = store.blobs.put_bytes(b"old content")
    time.sleep(0.01)
    with store.ingesting():
        time.sleep(0.01)
        assert store.blobs.put_bytes(b"old content") == old
        store.sweep()
        assert store.blobs.has(old)


def test_grace_protects_recent_puts(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s", grace_seconds=60) as store:
        blob = store.blobs.put_bytes(b"just put")
        store.sweep()
        assert store.blobs.has(blob)


def test_sweep_removes_unreferenced_materialised_trees(store: Store, tmp_path: Path) -> None:
    digest, _ = store.trees.ingest(make_sample_tree(tmp_path / "src"))
    store.put_root("deps", b"d", b"", trees=[digest]).result()
    path = store.trees.materialise(digest)
    store.sweep()
    assert path.is_dir() and store.trees.is_materialised(digest)
    store.delete_roots("deps", [b"d"]).result()
    report = store.sweep()
    assert report.trees_removed == 1
    assert not path.exists() and not store.trees.is_materialised(digest)
    assert store.stats().blobs == 0 and store.stats().trees_materialised == 0
    assert _cas_bytes(store) == 0


def test_sweep_removes_crash_orphans_not_in_the_index(store: Store) -> None:
    orphan = store.root / "cas" / "ab" / ("ab" + "0" * 62)
    orphan.write_bytes(b"left by a crash")
    store.sweep()
    assert not orphan.exists()


def test_verify_finds_and_repairs_corruption(store: Store, tmp_path: Path) -> None:
    digest, tree = store.trees.ingest(make_sample_tree(tmp_path / "src"))
    store.put_root("deps", b"d", b"", trees=[digest]).result()
    good = _root_with_blob(store, b"good")
    out = store.trees.materialise(digest)
    victim = next(f for f in tree.files if f.path == "src/main.ts")
    path = store.blobs.primary(Digest.from_proto(victim.digest))
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))

    report = store.verify()
    assert not report.ok and len(report.corrupt) == 1 and report.roots_deleted == 0
    assert store.get_root("deps", b"d") is not None

    report = store.verify(repair=True)
    assert report.quarantined == 1 and report.roots_deleted == 1 and report.trees_removed == 1
    assert store.get_root("deps", b"d") is None
    assert store.get_root("actions", b"good") is not None and store.blobs.verify(good)
    assert not out.exists()
    assert len(os.listdir(store.root / "quarantine")) == 1
    assert store.verify().ok


def test_a_cap_below_what_is_protected_keeps_the_newest_roots(tmp_path: Path) -> None:
    """Recent blobs cannot be freed yet: eviction must not drop the entries that name them."""
    with Store.open(tmp_path / "s", grace_seconds=3600, lease_seconds=0) as store:
        for name in (b"one", b"two", b"three"):
            blob = store.blobs.put_bytes(name * 10_000)
            store.put_root("actions", name, b"", blobs=[blob]).result()
        report = store.collect(max_bytes=1)
        assert report.roots_evicted == 0
        assert all(store.get_root("actions", n, lease=False) is not None for n in (b"one", b"two", b"three"))


def test_a_collect_reports_what_it_could_not_free_by_reason_and_when_it_can(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s", grace_seconds=60, lease_seconds=600) as store:
        start = time.time_ns()
        hit = _root_with_blob(store, b"hit", size=3 * KB)
        assert store.get_root("actions", b"hit") is not None  # a hit: leased for 600 s
        fresh = store.blobs.put_bytes(os.urandom(2 * KB))  # nobody names it, younger than the grace period
        report = store.collect(max_bytes=1)
        held = {h.reason: h for h in report.held}
        assert set(held) == {"leased", "grace"}, report.held
        assert (held["leased"].count, held["leased"].bytes) == (1, hit.size)
        assert (held["grace"].count, held["grace"].bytes) == (1, fresh.size)
        assert report.bytes_held == hit.size + fresh.size == report.bytes_after
        end = time.time_ns()
        assert start + 600e9 <= held["leased"].free_from_ns == held["leased"].free_all_ns <= end + 600e9
        assert start + 60e9 <= held["grace"].free_all_ns <= end + 60e9
        assert held["leased"].describe().startswith("leased until 20")
        assert held["grace"].describe().startswith("younger than the grace period (until 20")
        assert store.blobs.has(hit) and store.blobs.has(fresh)


def test_blobs_of_a_running_ingest_past_the_grace_are_held_by_the_running_build(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s", grace_seconds=0.05, lease_seconds=0) as store:
        with store.ingesting():
            blob = store.blobs.put_bytes(b"put by a build still running")
            time.sleep(0.1)
            report = store.sweep()
            assert [(h.reason, h.count, h.bytes, h.free_all_ns) for h in report.held] == [("running_build", 1, blob.size, 0)]
            assert "running build" in report.held[0].describe()
        assert store.sweep().held == []  # the build ended: nothing holds it any more
        assert not store.blobs.has(blob)


def test_a_sweep_without_a_cap_reports_no_bytes_a_root_keeps(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s", grace_seconds=60, lease_seconds=0) as store:
        _root_with_blob(store, b"kept")
        assert store.sweep().held == []
