"""Verification: re-hash every blob file, find what roots name but the disk lacks.

With ``repair=True`` corrupt files move to ``quarantine/`` (kept for a person
to look at), materialised trees holding them are removed (their hardlinks share
the corrupt inode), and roots naming corrupt or missing content are deleted so
the next lookup misses and rebuilds instead of serving bad bytes.

This module must never delete a corrupt file outright, and never delete a root
that only names intact content.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import lmdb

from cached.digest import Digest
from cached.store.blobs import parse_name
from cached.store.errors import TreeNotFound

if TYPE_CHECKING:
    from cached.store.store import Store

log = logging.getLogger("cached.store.verify")


@dataclass
class VerifyReport:
    files_checked: int = 0
    corrupt: list[str] = field(default_factory=list)  # paths (relative to the root)
    missing: list[Digest] = field(default_factory=list)  # named by a root or registered, but absent
    quarantined: int = 0
    roots_deleted: int = 0
    trees_removed: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing


def verify_store(store: "Store", *, repair: bool = False) -> VerifyReport:
    started = time.perf_counter()
    report = VerifyReport()
    function = store.hasher.function
    corrupt_hashes: set[str] = set()
    corrupt_paths: list[Path] = []
    present: set[bytes] = set()
    cas = store.root / "cas"
    for sub in sorted(os.listdir(cas)):
        for entry in os.scandir(cas / sub):
            h, _, _ = parse_name(entry.name)
            size = entry.stat(follow_symlinks=False).st_size
            expected = Digest(h, size, function)
            report.files_checked += 1
            if store.hasher.file(entry.path) != expected:
                corrupt_hashes.add(h)
                corrupt_paths.append(Path(entry.path))
                report.corrupt.append(os.path.relpath(entry.path, store.root))
            else:
                present.add(expected.key)

    missing: dict[bytes, Digest] = {}
    for key, _ in store.index.items("blobs"):
        if key not in present and Digest.from_key(key).hash not in corrupt_hashes:
            missing[key] = Digest.from_key(key)
    bad_roots: list[tuple[str, bytes]] = []
    bad_trees: set[Digest] = set()
    for entry in store.iter_roots():
        named = list(entry.blobs) + list(entry.trees)
        for t in entry.trees:
            try:
                named.extend(store.trees.file_digests(t))
            except TreeNotFound:
                pass
        bad = [d for d in named if d.key not in present]
        for d in bad:
            if d.hash not in corrupt_hashes:
                missing[d.key] = d
        if bad:
            bad_roots.append((entry.kind, entry.key))
    for name, t in store.trees.materialised().items():
        try:
            files = store.trees.file_digests(t)
        except TreeNotFound:
            bad_trees.add(t)
            continue
        if t.hash in corrupt_hashes or any(d.hash in corrupt_hashes for d in files):
            bad_trees.add(t)
    report.missing = sorted(missing.values())

    if repair and (corrupt_paths or bad_roots or bad_trees):
        quarantine = store.root / "quarantine"
        stamp = time.time_ns()
        for path in corrupt_paths:
            os.rename(path, quarantine / f"{path.name}.{stamp}")
            report.quarantined += 1
        by_kind: dict[str, list[bytes]] = {}
        for kind, key in bad_roots:
            by_kind.setdefault(kind, []).append(key)
        for kind, keys in by_kind.items():
            report.roots_deleted += store.delete_roots(kind, keys).result()
        names = [n for n, t in store.trees.materialised().items() if t in bad_trees]
        corrupt_keys = [k for k, _ in store.index.items("blobs") if Digest.from_key(k).hash in corrupt_hashes]

        def fn(txn: lmdb.Transaction) -> None:
            store.blobs.totals.forget(txn, corrupt_keys)
            store.trees.unmark_and_remove(txn, names)

        store.index.submit(fn).result()
        store.trees.remove_dirs(names)
        report.trees_removed = len(names)
    if repair:  # a repair leaves the store's totals exact, whatever happened before
        store.index.submit(store.blobs.totals.recount).result()
    report.seconds = time.perf_counter() - started
    if not report.ok:
        log.warning("verify: %d corrupt files, %d missing blobs", len(report.corrupt), len(report.missing))
    return report
