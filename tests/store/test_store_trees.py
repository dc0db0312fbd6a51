"""Trees: ingest, materialise, link_out/copy_out, manifests, link limits."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from cached.digest import Digest
from cached.store import Store, TreeNotFound
from cached.v1 import tree_pb2

from store_helpers import make_sample_tree, snapshot


def test_ingest_and_materialise_round_trip(store: Store, tmp_path: Path) -> None:
    src = make_sample_tree(tmp_path / "src")
    expected = snapshot(src)
    digest, tree = store.trees.ingest(src)

    paths = [f.path for f in tree.files]
    assert paths == sorted(paths)
    assert {s.path: s.target for s in tree.symlinks} == {
        "link-abs": "/nonexistent/target",
        "link-rel": "src/main.ts",
        "src/lib-link": "lib",
    }
    assert list(tree.directories) == ["empty/nested"]
    assert [f.path for f in tree.files if f.executable] == ["bin/run"]
    assert store.trees.load(digest) == tree
    assert digest == store.hasher.bytes(tree.SerializeToString(deterministic=True))

    out = store.trees.materialise(digest)
    assert out == store.root / "trees" / f"blake3-{digest.hash}"
    assert snapshot(out) == expected
    assert stat.S_IMODE(out.stat().st_mode) == 0o555
    assert stat.S_IMODE((out / "src" / "lib").stat().st_mode) == 0o555
    assert stat.S_IMODE((out / "bin" / "run").stat().st_mode) == 0o555
    assert stat.S_IMODE((out / "src" / "main.ts").stat().st_mode) == 0o444
    # Files are hardlinks to the blobs, not copies.
    util = next(f for f in tree.files if f.path == "src/lib/util.ts")
    assert (out / "src/lib/util.ts").stat().st_ino == store.blobs.primary(Digest.from_proto(util.digest)).stat().st_ino
    assert not [p for p in os.listdir(store.root / "trees") if p.startswith(".tmp-")]


def test_materialise_twice_is_o1(store: Store, tmp_path: Path) -> None:
    digest, _ = store.trees.ingest(make_sample_tree(tmp_path / "src"))
    first = store.trees.materialise(digest)
    inode = first.stat().st_ino
    txns = store.index.write_txn_count
    calls: list[object] = []
    original = store.trees._populate
    store.trees._populate = lambda *a: calls.append(a) or original(*a)  # type: ignore[method-assign]
    assert store.trees.materialise(digest) == first
    assert first.stat().st_ino == inode
    assert calls == [] and store.index.write_txn_count == txns


def test_ingest_is_deterministic_and_dedups(store: Store, tmp_path: Path) -> None:
    a = make_sample_tree(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b, symlinks=True)
    da, ta = store.trees.ingest(a)
    db, tb = store.trees.ingest(b)
    assert da == db and ta == tb
    same = [f for f in ta.files if f.path in ("src/lib/util.ts", "src/lib/same.ts")]
    assert same[0].digest == same[1].digest


def test_ingest_move_leaves_nothing_behind(store: Store, tmp_path: Path) -> None:
    src = make_sample_tree(tmp_path / "src")
    expected = snapshot(src)
    digest, _ = store.trees.ingest(src, move=True)
    assert snapshot(store.trees.materialise(digest)) == expected


def test_ingest_refuses_special_files(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "ok").write_text("ok")
    os.mkfifo(src / "d" / "pipe")
    with pytest.raises(ValueError, match="pipe"):
        store.trees.ingest(src)


def test_link_out_and_copy_out(store: Store, tmp_path: Path) -> None:
    src = make_sample_tree(tmp_path / "src")
    expected = snapshot(src)
    digest, tree = store.trees.ingest(src)

    linked = tmp_path / "linked"
    store.trees.link_out(tree, linked)
    assert snapshot(linked) == expected
    assert os.access(linked / "src", os.W_OK)
    assert (linked / "zero").stat().st_nlink >= 2

    copied = tmp_path / "copied"
    store.trees.copy_out(tree, copied)
    assert snapshot(copied) == expected
    assert (copied / "src" / "main.ts").stat().st_nlink == 1
    assert stat.S_IMODE((copied / "src" / "main.ts").stat().st_mode) == 0o644
    (copied / "src" / "main.ts").write_text("private")  # writable, and the blob is untouched
    assert store.blobs.verify(Digest.from_proto(next(f for f in tree.files if f.path == "src/main.ts").digest))


def test_unknown_or_malicious_trees_are_refused(store: Store, tmp_path: Path) -> None:
    with pytest.raises(TreeNotFound):
        store.trees.materialise(store.hasher.bytes(b"never stored"))
    d = store.blobs.put_bytes(b"x")
    for bad in ("../escape", "/abs", "a/./b", "a//b"):
        t = tree_pb2.Tree()
        t.files.add(path=bad, digest=d.to_proto())
        with pytest.raises(ValueError):
            store.trees.link_out(t, tmp_path / "out")
    through_link = tree_pb2.Tree()
    through_link.symlinks.add(path="l", target="/etc")
    through_link.files.add(path="l/passwd", digest=d.to_proto())
    with pytest.raises(ValueError, match="symlink"):
        store.trees.materialise(store.trees.put_tree(through_link))
    assert not (tmp_path / "out" / "escape").exists()


def test_link_limit_with_many_materialisations(tmp_path: Path) -> None:
    """The same content in many trees (and many times in one tree) with the limit injected at 3."""
    with Store.open(tmp_path / "s", link_limit=3, grace_seconds=0) as store:
        digests = []
        for i in range(6):
            src = tmp_path / f"src{i}"
            src.mkdir()
            for j in range(4):
                (src / f"copy{j}.js").write_text("module.exports = 42\n")
            (src / "tag").write_text(str(i))
            digest, _ = store.trees.ingest(src)
            digests.append(digest)
        outs = [store.trees.materialise(d) for d in digests]
        content = store.hasher.bytes(b"module.exports = 42\n")
        files = store.blobs.files_of(content)
        assert len(files) >= (6 * 4) // 2  # at most 2 links besides each file's own name
        for f in files:
            assert f.stat().st_nlink <= 3
        for out in outs:
            for j in range(4):
                assert (out / f"copy{j}.js").read_text() == "module.exports = 42\n"
        assert store.blobs.verify(content)


def test_a_deleted_materialised_tree_is_rebuilt(store: Store, tmp_path: Path) -> None:
    src = make_sample_tree(tmp_path / "src")
    expected = snapshot(src)
    digest, _ = store.trees.ingest(src)
    path = store.trees.materialise(digest)
    from cached.store.fsutil import remove_tree

    remove_tree(path)
    assert store.trees.materialise(digest) == path
    assert snapshot(path) == expected
