"""The Vite cache layer: what a build leaves in node_modules' upper layer, kept for the app's next build.

Vite writes ``.vite`` (its dependency optimizer) and ``.vite-temp`` (the
bundled config), and ``tsc -b`` writes ``.tmp`` (its build info) into
node_modules. With node_modules an overlay, those writes land in the build's
upper dir; after a successful build they are saved as a tree keyed by
(tenant, app) and restored into the next build's upper dir when the deps key
is the same. A deps-key change drops them: a stale optimizer cache is worse
than none. Everything else in the upper dir (a build's writes into packages,
overlay whiteouts) is discarded, never saved.

Restores copy, never hardlink: the upper dir is handed to the sandbox user.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from pathlib import Path

from cached.digest import Digest
from cached.store import Store, TreeNotFound
from cached.v1 import records_pb2

log = logging.getLogger("cached.deps.vitecache")

CACHE_DIRS = (".vite", ".vite-temp", ".tmp")


class ViteCache:
    def __init__(self, store: Store) -> None:
        self.store = store

    def restore(self, tenant: str, app: str, deps_key: str, upper: Path) -> tuple[bool, str, int]:
        """Fills ``upper`` with the app's saved cache: (restored, reason, files)."""
        root = self.store.vitecache.get(self.store.vitecache.key(tenant, app))
        if root is None:
            return False, "none", 0
        record = records_pb2.ViteCacheRecord.FromString(root.value)
        if record.deps_key != deps_key:
            return False, "deps_changed", 0
        try:
            tree = self.store.trees.load(Digest.from_proto(record.tree))
            self.store.trees.copy_out(tree, upper)
        except (TreeNotFound, FileNotFoundError):
            return False, "evicted", 0
        return True, "hit", len(tree.files)

    def save(self, tenant: str, app: str, deps_key: str, upper: Path, staging: Path) -> int:
        """Moves the cache dirs out of ``upper`` into the store; returns the files kept."""
        staging.mkdir(parents=True, exist_ok=True)
        for name in CACHE_DIRS:
            source = upper / name
            try:
                mode = os.lstat(source).st_mode
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(mode) and _only_plain(source):
                os.rename(source, staging / name)
        if not any(staging.iterdir()):
            return 0
        with self.store.ingesting():
            digest, tree = self.store.trees.ingest(staging, move=True)
        record = records_pb2.ViteCacheRecord(tree=digest.to_proto(), deps_key=deps_key, created_unix_ms=int(time.time() * 1000))
        self.store.vitecache.put(self.store.vitecache.key(tenant, app), record.SerializeToString(), trees=(digest,), owner=f"{tenant}/{app}").result()
        return len(tree.files)


def _only_plain(path: Path) -> bool:
    """True when the dir holds only regular files and dirs (no links, devices or whiteouts)."""
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            mode = os.lstat(os.path.join(dirpath, name)).st_mode
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                return False
    return True
