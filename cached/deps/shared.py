"""Dependency trees and resolutions through the shared tier, for what the package store does not make.

A tree laid out from the package store is not shared as a tree: another
daemon lays the same lockfile out from the same packages (their tarballs
are shared, ``cached/packages/fetch.py``), at the cost of a manifest. A
tree ``npm ci`` made (a git or ``file:`` dependency, an allowlisted install
script) is shared whole: its signed ``DepsRecord``, its manifest and its
blobs, each checked against its digest as it arrives; a record whose blobs
are not all there is a miss. A resolution (the lockfile npm resolved for a
package.json sent without one) depends on nothing tenant-specific (its key is
package.json's dependency fields, the kept ``.npmrc`` keys and the
toolchain), so it is shared as it is.

Reads block on the bucket: call them from a worker thread. Publishing runs
on one worker thread behind the local commit and never blocks a build.
"""

from __future__ import annotations

import concurrent.futures
import logging

from cached import sharing
from cached.digest import Digest
from cached.remote import RemoteTier
from cached.store import Store
from cached.store.trees import serialise
from cached.v1 import records_pb2, tree_pb2

log = logging.getLogger("cached.deps.shared")

DEPS = "deps"
RESOLUTIONS = "resolutions"
SHARED_METHODS = ("npm ci", "packages + npm rebuild")  # the trees no other daemon could lay out itself


class SharedDependencies:
    def __init__(self, store: Store, tier: RemoteTier) -> None:
        self.store = store
        self.tier = tier
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cached-publish-deps")

    # -- trees ------------------------------------------------------------------------------
    def fetch_tree(self, deps_key: str, owner: str) -> records_pb2.DepsRecord | None:
        """The tree another daemon installed for this deps key, stored here; None on any doubt."""
        value = self.tier.get_record(DEPS, deps_key)
        if value is None:
            return None
        try:
            record = records_pb2.DepsRecord.FromString(value)
        except Exception:  # noqa: BLE001 - a signed value this daemon cannot read is a miss
            return None
        digest = Digest.from_proto(record.tree)
        manifest = self.tier.get_blob(digest)
        if manifest is None:
            return None
        try:
            tree = tree_pb2.Tree.FromString(manifest)
        except Exception:  # noqa: BLE001 - a manifest this daemon cannot read is a miss
            return None
        fetched = sharing.bring(self.store, self.tier, [(Digest.from_proto(f.digest), f.executable) for f in tree.files])
        if fetched is None:
            return None
        with self.store.ingesting():
            self.store.blobs.put_bytes(manifest)
            self.store.trees.put_tree(tree)  # validates the manifest's paths: it came from the bucket
            self.store.deps.put(deps_key.encode(), value, trees=(digest,), owner=owner).result()
        log.info("dependency tree from the shared tier", extra={"deps_key": deps_key, "files": len(tree.files), "blobs_fetched": fetched})
        return record

    def publish_tree(self, deps_key: str, record: records_pb2.DepsRecord, tree: tree_pb2.Tree) -> None:
        if self.tier.writable and record.method in SHARED_METHODS:
            self._pool.submit(self._publish_tree, deps_key, record, tree)

    def _publish_tree(self, deps_key: str, record: records_pb2.DepsRecord, tree: tree_pb2.Tree) -> None:
        try:
            queued = sharing.send(self.store, self.tier, [(Digest.from_proto(f.digest), f.executable) for f in tree.files])
            queued = self.tier.put_blob(Digest.from_proto(record.tree), serialise(tree)) and queued
            if queued:  # a record whose blobs were dropped would only be a miss for everyone
                self.tier.put_record(DEPS, deps_key, record.SerializeToString())
        except Exception as e:  # noqa: BLE001 - a publication that fails costs another daemon an install, never a build
            log.warning("publishing a dependency tree failed", extra={"deps_key": deps_key, "error": str(e)})

    # -- resolutions ------------------------------------------------------------------------
    def fetch_resolution(self, key: str) -> records_pb2.ResolutionRecord | None:
        value = self.tier.get_record(RESOLUTIONS, key)
        if value is None:
            return None
        try:
            return records_pb2.ResolutionRecord.FromString(value)
        except Exception:  # noqa: BLE001
            return None

    def publish_resolution(self, key: str, record: records_pb2.ResolutionRecord) -> None:
        if self.tier.writable:
            self.tier.put_record(RESOLUTIONS, key, record.SerializeToString())

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
