"""The index and roots: group commit, no-write lookups, map growth, the root lock, reopening."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cached.store import RootEntry, Store, StoreLockedError

from store_helpers import make_sample_tree

REPO = Path(__file__).resolve().parents[2]


def test_group_commit_batches_queued_writes(store: Store) -> None:
    gate = threading.Event()
    before = store.index.write_txn_count
    blocker = store.index.submit(lambda txn: gate.wait(10))
    time.sleep(0.05)  # the writer is now inside the blocker's batch
    futures = [store.index.put("apps", f"k{i}".encode(), b"v") for i in range(300)]
    gate.set()
    blocker.result()
    for f in futures:
        f.result()
    assert store.index.write_txn_count - before <= 3
    assert store.index.get("apps", b"k299") == b"v"


def test_a_failing_function_does_not_spoil_its_batch(store: Store) -> None:
    gate = threading.Event()
    blocker = store.index.submit(lambda txn: gate.wait(10))
    time.sleep(0.05)
    good1 = store.index.put("apps", b"a", b"1")

    def bad(txn):  # type: ignore[no-untyped-def]
        txn.put(b"half", b"written", db=store.index.db("apps"))
        raise RuntimeError("boom")

    failing = store.index.submit(bad)
    good2 = store.index.put("apps", b"b", b"2")
    gate.set()
    blocker.result(), good1.result(), good2.result()
    with pytest.raises(RuntimeError, match="boom"):
        failing.result()
    assert store.index.get("apps", b"a") == b"1" and store.index.get("apps", b"b") == b"2"
    assert store.index.get("apps", b"half") is None


def test_futures_work_from_asyncio(store: Store) -> None:
    async def main() -> bytes | None:
        await asyncio.wrap_future(store.index.put("apps", b"t/a", b"last"))
        return store.index.get("apps", b"t/a")

    assert asyncio.run(main()) == b"last"


def test_lookups_do_not_write(store: Store) -> None:
    blob = store.blobs.put_bytes(b"output")
    store.put_root("actions", b"key", b"result", blobs=[blob], owner="t/a").result()
    store.flush().result()
    before = store.index.write_txn_count
    for _ in range(200):
        entry = store.get_root("actions", b"key")
        assert entry is not None and entry.value == b"result"
        assert store.get_root("actions", b"other") is None
        assert store.index.get("actions", b"key") is not None
    assert store.index.write_txn_count == before


def test_map_grows_when_full(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s", map_size=1 << 18) as store:
        futures = [store.index.put("apps", f"app-{i:05d}".encode(), os.urandom(300)) for i in range(3000)]
        values = [f.result() for f in futures]
        assert values == [None] * 3000
        assert store.index.map_growths >= 1
        assert store.stats().map_size > 1 << 18
        assert all(store.index.get("apps", f"app-{i:05d}".encode()) is not None for i in range(3000))


def test_second_process_gets_a_clear_lock_error(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with Store.open(root):
        code = (
            "import sys\n"
            "from cached.store import Store, StoreLockedError\n"
            "try:\n"
            f"    Store.open({str(root)!r})\n"
            "except StoreLockedError as e:\n"
            "    print(e); sys.exit(3)\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert proc.returncode == 3, proc.stderr
        assert str(root) in proc.stdout
        assert f"process {os.getpid()}" in proc.stdout
    # Same process, second open: also refused while the first is open; fine once closed.
    with Store.open(root):
        with pytest.raises(StoreLockedError):
            Store.open(root)
    Store.open(root).close()


def test_digest_function_is_fixed_per_root(tmp_path: Path) -> None:
    Store.open(tmp_path / "s").close()
    with pytest.raises(ValueError, match="blake3"):
        Store.open(tmp_path / "s", digest_function="xxh3_128")
    with Store.open(tmp_path / "x", digest_function="xxh3_128") as store:
        d = store.blobs.put_bytes(b"fast")
        assert d.function == "xxh3_128" and store.blobs.verify(d)


def test_roots_put_get_iter_delete(store: Store, tmp_path: Path) -> None:
    digest, tree = store.trees.ingest(make_sample_tree(tmp_path / "src"))
    log = store.blobs.put_bytes(b"build log")
    entry = store.put_root("actions", b"a1", b"manifest", blobs=[log], trees=[digest], owner="t/app").result()
    assert isinstance(entry, RootEntry)
    files = {f.digest.hash: f.digest.size for f in tree.files}
    assert entry.size == log.size + digest.size + sum(files.values())
    got = store.get_root("actions", b"a1")
    assert got is not None
    assert (got.value, got.blobs, got.trees, got.owner) == (b"manifest", (log,), (digest,), "t/app")
    assert got.last_access_ns >= entry.created_ns
    store.put_root("deps", b"d1", b"", trees=[digest]).result()
    assert {(e.kind, e.key) for e in store.iter_roots()} == {("actions", b"a1"), ("deps", b"d1")}
    assert [e.key for e in store.iter_roots("deps")] == [b"d1"]
    with pytest.raises(Exception, match="not in the store"):
        store.put_root("actions", b"bad", b"", blobs=[store.hasher.bytes(b"absent")])
    with pytest.raises(ValueError):
        store.put_root("nope", b"k", b"")
    assert store.delete_roots("actions", [b"a1", b"zz"]).result() == 1
    assert store.get_root("actions", b"a1") is None


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    root = tmp_path / "s"
    src = make_sample_tree(tmp_path / "src")
    with Store.open(root, flush_interval=3600) as store:
        digest, tree = store.trees.ingest(src)
        out = store.trees.materialise(digest)
        blob = store.blobs.put_bytes(b"kept")
        store.put_root("deps", b"deps-key", b"v", trees=[digest], blobs=[blob]).result()
        store.set_purge_watermark("t/app", 1234).result()
        time.sleep(0.01)
        touched = store.get_root("deps", b"deps-key")
        assert touched is not None
    with Store.open(root) as store:
        # The hit before close was flushed at close, though the flush interval never came.
        stored = next(store.iter_roots("deps"))
        assert stored.last_access_ns == touched.last_access_ns > stored.created_ns
        entry = store.get_root("deps", b"deps-key", lease=False)
        assert entry is not None and entry.trees == (digest,)
        assert store.trees.materialise(digest) == out
        assert store.trees.load(digest) == tree
        assert store.blobs.verify(blob)
        assert store.purge_watermark("t/app") == 1234
        assert store.stats().blobs >= len({f.digest.hash for f in tree.files})
        assert store.verify().ok
