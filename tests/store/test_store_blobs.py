"""Blobs: round trips, modes, ownership, link limits, concurrent writers."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from cached.digest import Digest, Hasher
from cached.store import BlobNotFound, Store


def _no_temp_left(store: Store) -> None:
    assert os.listdir(store.root / "tmp") == []


def test_put_bytes_round_trip_and_layout(store: Store) -> None:
    d = store.blobs.put_bytes(b"hello world")
    assert d == Hasher().bytes(b"hello world")
    with store.blobs.open(d) as f:
        assert f.read() == b"hello world"
    path = store.root / "cas" / d.hash[:2] / d.hash
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o444
    assert store.blobs.has(d) and not store.blobs.has(d, executable=True)
    assert store.blobs.verify(d)
    assert store.blobs.put_bytes(b"hello world") == d  # idempotent
    _no_temp_left(store)


def test_executable_blob_is_its_own_file(store: Store) -> None:
    d = store.blobs.put_bytes(b"#!/bin/sh\necho hi\n", executable=True)
    path = store.root / "cas" / d.hash[:2] / f"{d.hash}.x"
    assert stat.S_IMODE(path.stat().st_mode) == 0o555
    assert store.blobs.has(d, executable=True) and not store.blobs.has(d)
    # Another mode is made on demand from the content we hold.
    plain = store.blobs.path_for(d, executable=False)
    assert stat.S_IMODE(plain.stat().st_mode) == 0o444
    assert plain.read_bytes() == path.read_bytes()
    assert store.blobs.verify(d, executable=True) and store.blobs.verify(d)


def test_missing_and_foreign_digests(store: Store) -> None:
    present = store.blobs.put_bytes(b"a")
    absent = Hasher().bytes(b"b")
    assert store.blobs.missing([present, absent, absent]) == [absent]
    with pytest.raises(BlobNotFound):
        store.blobs.open(absent)
    assert not store.blobs.verify(absent)
    wrong_size = Digest(present.hash, present.size + 1)
    assert not store.blobs.has(wrong_size)


def test_put_file_links_our_own_read_only_file(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "own.txt"
    src.write_bytes(b"mine" * 1000)
    os.chmod(src, 0o400)
    d = store.blobs.put_file(src)
    blob = store.blobs.primary(d)
    assert blob.stat().st_ino == src.stat().st_ino  # hardlinked, not copied
    assert stat.S_IMODE(blob.stat().st_mode) == 0o444
    assert store.blobs.verify(d)
    _no_temp_left(store)


def test_put_file_copies_a_writable_file(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "writable.txt"
    src.write_bytes(b"may change later")
    d = store.blobs.put_file(src)
    assert store.blobs.primary(d).stat().st_ino != src.stat().st_ino
    src.write_bytes(b"changed in place")  # the blob does not change with it
    assert store.blobs.verify(d)
    assert stat.S_IMODE(src.stat().st_mode) == 0o644


def test_put_file_executable_from_mode(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "tool"
    src.write_bytes(b"#!/bin/sh\n")
    os.chmod(src, 0o755)  # writable: copied, with the exec bit taken from the mode
    d = store.blobs.put_file(src)
    assert store.blobs.has(d, executable=True)
    assert stat.S_IMODE(store.blobs.primary(d, True).stat().st_mode) == 0o555


def test_put_file_copies_a_file_with_other_links(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "a"
    src.write_bytes(b"shared inode")
    os.link(src, tmp_path / "b")
    d = store.blobs.put_file(src)
    assert store.blobs.primary(d).stat().st_ino != src.stat().st_ino
    assert stat.S_IMODE(src.stat().st_mode) == 0o644  # untouched
    assert store.blobs.verify(d)


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another uid needs root")
def test_put_file_move_takes_ownership_from_sandbox_uid(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "out.js"
    src.write_bytes(b"emitted by a sandboxed build")
    os.chown(src, 65534, 65534)
    os.chmod(src, 0o666)
    d = store.blobs.put_file(src, move=True)
    assert not src.exists()
    st = store.blobs.primary(d).stat()
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    assert stat.S_IMODE(st.st_mode) == 0o444
    assert store.blobs.verify(d)


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another uid needs root")
def test_put_file_move_copies_a_file_with_a_second_link(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "out.js"
    src.write_bytes(b"emitted, and linked elsewhere by the build")
    planted = tmp_path / "planted"
    os.link(src, planted)
    os.chown(src, 65534, 65534)
    d = store.blobs.put_file(src, move=True)
    assert not src.exists()
    assert store.blobs.primary(d).stat().st_ino != planted.stat().st_ino
    planted.write_bytes(b"rewritten through the other name")
    assert store.blobs.verify(d)


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another uid needs root")
def test_put_file_without_move_copies_a_foreign_file(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "foreign.js"
    src.write_bytes(b"not ours")
    os.chown(src, 65534, 65534)
    d = store.blobs.put_file(src)
    st = store.blobs.primary(d).stat()
    assert st.st_ino != src.stat().st_ino
    assert st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) == 0o444
    assert src.stat().st_uid == 65534  # the source is left alone


def test_put_file_refuses_special_files(store: Store, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises((ValueError, OSError)):
        store.blobs.put_file(fifo)


def test_link_limit_makes_sibling_copies(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s", link_limit=3, grace_seconds=0) as store:
        d = store.blobs.put_bytes(b"popular")
        out = tmp_path / "out"
        out.mkdir()
        for i in range(10):
            store.blobs.link_to(d, False, out / f"l{i}")
        files = store.blobs.files_of(d)
        assert len(files) >= 4  # the blob plus siblings
        for f in files:
            assert f.stat().st_nlink <= 3
            assert stat.S_IMODE(f.stat().st_mode) == 0o444
        assert all((out / f"l{i}").read_bytes() == b"popular" for i in range(10))
        assert store.blobs.verify(d)
        room = store.blobs.path_for(d)
        assert room.stat().st_nlink < 3


def test_concurrent_writers_same_and_different_blobs(store: Store, tmp_path: Path) -> None:
    shared = [os.urandom(4096) + bytes([i]) for i in range(40)]
    errors: list[BaseException] = []
    results: dict[int, list[Digest]] = {}
    barrier = threading.Barrier(6)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            mine = [os.urandom(2048) for _ in range(40)]
            digests = [store.blobs.put_bytes(b) for b in shared]
            digests += [store.blobs.put_bytes(b, executable=bool(i % 2)) for i, b in enumerate(mine)]
            src = tmp_path / f"w{n}"
            src.mkdir()
            for i, b in enumerate(shared[:10]):
                (src / str(i)).write_bytes(b)
                digests.append(store.blobs.put_file(src / str(i)))
            results[n] = digests
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({d for ds in results.values() for d in ds}) == 40 + 6 * 40
    for ds in results.values():
        for d in ds:
            assert store.blobs.verify(d) or store.blobs.verify(d, executable=True)
    _no_temp_left(store)
    store.flush().result()
    assert store.stats().blobs == 40 + 6 * 40


def test_owners_scope_missing_blobs(store: Store) -> None:
    a = store.blobs.put_bytes(b"tenant a's")
    b = store.blobs.put_bytes(b"tenant b's")
    store.blobs.note_owner("a", [a]).result()
    store.blobs.note_owner("b", [b]).result()
    assert store.blobs.owned_by("a", [a, b]) == {a}
    assert store.blobs.missing_for("a", [a, b]) == [b]  # b exists, but not for tenant a
