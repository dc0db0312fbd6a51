"""Crash safety: a child process dies at a failpoint; the reopened store holds old or new state.

The child ingests a tree, records a deps root naming it, then materialises
it. Whatever instant it dies at, the parent must find the root either absent
or present with its whole tree (every blob verifies), no temp leftovers, and
no incomplete tree that materialise would return.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cached.digest import Digest
from cached.failpoints import EXIT_CODE
from cached.store import Store

from store_helpers import make_sample_tree, snapshot

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import sys
from pathlib import Path
from cached.store import Store
root, src = Path(sys.argv[1]), Path(sys.argv[2])
store = Store.open(root)
with store.ingesting():
    digest, tree = store.trees.ingest(src)
    store.put_root("deps", b"the-deps-key", digest.key, trees=[digest]).result()
store.trees.materialise(digest)
store.close()
"""

# (failpoint spec, whether the root must be there afterwards: True, False or None for either)
CASES = [
    ("blob.before_rename:1", False),
    ("blob.before_rename:5", False),
    ("blob.after_rename:1", False),
    ("blob.after_rename:6", False),  # the manifest, last blob written,
    ("ingest.after_blob:3", False),
    ("ingest.before_manifest", False),
    ("root.before_put", False),
    ("index.before_commit", False),
    ("index.after_commit", True),
    ("tree.after_populate", True),
    ("tree.before_mark", True),
    ("index.after_commit:2", True),  # the commit that marks the materialised tree
]


def _run_child(root: Path, src: Path, spec: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "CACHED_FAILPOINT": spec}
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(src)], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=120,
    )


def _check_recovered(root: Path, expected: dict[str, tuple[str, object, int]], must_have_root: bool | None) -> None:
    with Store.open(root, grace_seconds=0, lease_seconds=0) as store:
        assert os.listdir(root / "tmp") == []
        leftovers = [n for n in os.listdir(root / "trees") if n.startswith(".tmp-")]
        assert leftovers == []
        marked = set(store.trees.materialised())
        assert set(os.listdir(root / "trees")) == marked  # no unmarked tree directory survives

        entry = store.get_root("deps", b"the-deps-key")
        if must_have_root is not None:
            assert (entry is not None) == must_have_root
        if entry is None:
            # Nothing names what the child stored: the sweep reclaims all of it.
            store.sweep()
            assert store.stats().blobs == 0
            assert sum(len(os.listdir(d)) for d in (root / "cas").iterdir()) == 0
            assert os.listdir(root / "trees") == []
            return
        (digest,) = entry.trees
        assert entry.value == digest.key
        tree = store.trees.load(digest)
        assert store.blobs.verify(digest)
        for node in tree.files:
            assert store.blobs.verify(Digest.from_proto(node.digest), node.executable), node.path
        path = store.trees.materialise(digest)
        assert snapshot(path) == expected
        assert store.verify().ok
        store.sweep()  # keeps everything the root names
        assert all(store.blobs.verify(Digest.from_proto(n.digest), n.executable) for n in tree.files)


@pytest.mark.parametrize(("spec", "must_have_root"), CASES, ids=[c[0] for c in CASES])
def test_crash_at_failpoint(tmp_path: Path, spec: str, must_have_root: bool) -> None:
    root = tmp_path / "store"
    Store.open(root).close()  # the store exists before the child, as a daemon's would
    src = make_sample_tree(tmp_path / "src")
    expected = snapshot(src)
    proc = _run_child(root, src, spec)
    assert proc.returncode == EXIT_CODE, f"failpoint {spec} was not hit: rc={proc.returncode} {proc.stderr[-2000:]}"
    _check_recovered(root, expected, must_have_root)


def test_no_failpoint_completes(tmp_path: Path) -> None:
    root = tmp_path / "store"
    src = make_sample_tree(tmp_path / "src")
    expected = snapshot(src)
    proc = _run_child(root, src, "")
    assert proc.returncode == 0, proc.stderr
    _check_recovered(root, expected, True)
    with Store.open(root) as store:
        assert store.stats().trees_materialised == 1


def test_crash_then_retry_reaches_the_new_state(tmp_path: Path) -> None:
    root = tmp_path / "store"
    src = make_sample_tree(tmp_path / "src")
    expected = snapshot(src)
    assert _run_child(root, src, "ingest.after_blob:2").returncode == EXIT_CODE
    assert _run_child(root, src, "").returncode == 0
    _check_recovered(root, expected, True)


@pytest.mark.parametrize("spec", ["blob.before_rename:2", "blob.after_rename:3", "index.after_commit"])
def test_crash_while_ingesting_by_hardlink(tmp_path: Path, spec: str) -> None:
    """Read-only files we own are linked into the store, not copied: the same guarantees hold."""
    root = tmp_path / "store"
    Store.open(root).close()
    src = make_sample_tree(tmp_path / "src")
    for dirpath, _, names in os.walk(src):
        for name in names:
            p = Path(dirpath) / name
            if not p.is_symlink():
                p.chmod(p.stat().st_mode & ~0o222)
    expected = snapshot(src)
    proc = _run_child(root, src, spec)
    assert proc.returncode == EXIT_CODE, proc.stderr[-2000:]
    linked = [p for p in src.rglob("*") if p.is_file() and not p.is_symlink() and p.stat().st_nlink > 1]
    assert linked  # the child did take files by hardlink
    _check_recovered(root, expected, spec == "index.after_commit")
