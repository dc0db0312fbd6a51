"""Registry packages kept once: a tree of blobs per sha512 integrity, a root of the store like any other.

A package is stored only after its tarball matched the integrity
(``fetch.py``), unpacked the way npm unpacks it (``tarball.py``). The key is
the sha512 alone, never the name: two lockfile entries with the same bytes
share one package, and no entry can name bytes it does not hash to.
"""

from __future__ import annotations

import concurrent.futures
import time
from dataclasses import dataclass

from cached.digest import Digest
from cached.failpoints import failpoint
from cached.packages.fetch import Fetched
from cached.packages.tarball import unpack
from cached.store import BlobNotFound, Store, TreeNotFound
from cached.v1 import records_pb2, tree_pb2


@dataclass(frozen=True)
class StoredPackage:
    key: str
    record: records_pb2.PackageRecord
    tree: tree_pb2.Tree


class StoredPackages:
    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, key: str) -> StoredPackage | None:
        """The package and its manifest (leased for the build), or None when absent or damaged."""
        entry = self.store.packages.get(key.encode())
        if entry is None:
            return None
        record = records_pb2.PackageRecord.FromString(entry.value)
        try:
            tree = self.store.trees.load(Digest.from_proto(record.tree))
        except (TreeNotFound, BlobNotFound):
            return None
        return StoredPackage(key, record, tree)

    def drop_damaged(self, keys: list[str]) -> int:
        """Forgets the packages among ``keys`` whose blobs are gone (deleted by hand, quarantined by verify),
        so the next layout fetches them again instead of composing a tree that cannot be materialised."""
        dropped = []
        for key in dict.fromkeys(keys):
            entry = self.store.packages.peek(key.encode())
            if entry is None:
                continue
            try:
                tree = self.store.trees.load(Digest.from_proto(records_pb2.PackageRecord.FromString(entry.value).tree))
            except (TreeNotFound, BlobNotFound):
                dropped.append(key.encode())
                continue
            if self.store.blobs.missing(Digest.from_proto(f.digest) for f in tree.files):
                dropped.append(key.encode())
        if dropped:
            self.store.packages.delete(dropped).result()
        return len(dropped)

    def put(self, fetched: Fetched) -> tuple[StoredPackage, concurrent.futures.Future[object]]:
        """Unpacks, stores the files and the manifest, and queues the record (call from a worker thread).

        The record's future is the caller's to wait for: waiting for many at
        once lets the index commit them together, behind one sync of the blobs."""
        want = fetched.want
        files = unpack(fetched.tarball, want.label)
        tree = tree_pb2.Tree()
        with self.store.ingesting():
            put = self.store.blobs.put_bytes
            for f in files:
                tree.files.add(path=f.path, digest=put(f.data, f.executable).to_proto(), executable=f.executable)
                failpoint("ingest.after_blob")
            failpoint("ingest.before_manifest")
            digest = self.store.trees.put_tree(tree)
            record = records_pb2.PackageRecord(
                tree=digest.to_proto(), name=want.name, version=want.version, files=len(files),
                bytes=sum(len(f.data) for f in files), tarball_bytes=len(fetched.tarball), fetched_unix_ms=int(time.time() * 1000),
            )
            committed = self.store.packages.put(want.key.encode(), record.SerializeToString(), trees=(digest,))
        return StoredPackage(want.key, record, tree), committed  # type: ignore[return-value]
