"""A dependency tree from the package store: what is stored is reused, only what is missing is fetched.

For a lockfile ``layout.plan`` can lay out, no npm process runs: the
packages the store lacks are fetched in parallel (``fetch.py``), each
checked against its sha512 and stored once (``stored.py``), then the tree's
manifest is composed from the packages' manifests (``compose.py``). Its
cost is one manifest of the tree's size; the files are blobs already.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from cached.digest import Digest
from cached.failpoints import failpoint
from cached.packages.compose import compose
from cached.packages.fetch import Fetched, TarballFetcher, Want
from cached.packages.layout import Layout
from cached.packages.stored import StoredPackage, StoredPackages
from cached.store import Store
from cached.v1 import tree_pb2

log = logging.getLogger("cached.packages.installer")

PROGRESS_STEPS = 10
STORERS = 2


@dataclass
class PackageTree:
    digest: Digest
    tree: tree_pb2.Tree
    reused: int
    fetched: int
    bytes_downloaded: int  # from the registry (npm's cache costs no download)
    ms: float


class PackageInstaller:
    def __init__(self, store: Store, fetcher: TarballFetcher) -> None:
        self.store = store
        self.fetcher = fetcher
        self.packages = StoredPackages(store)

    def _stored(self, layout: Layout) -> tuple[dict[str, StoredPackage], list[Want]]:
        have: dict[str, StoredPackage] = {}
        wants: dict[str, Want] = {}
        for entry in layout.entries:
            if entry.key in have or entry.key in wants:
                continue
            found = self.packages.get(entry.key)
            if found is not None:
                have[entry.key] = found
            else:
                wants[entry.key] = Want(entry.key, entry.name, entry.version)
        return have, list(wants.values())

    async def install(self, layout: Layout, emit: Any, progress: tuple[float, float]) -> PackageTree:
        """The tree's manifest, stored (its blobs are durable once a record naming it commits)."""
        started = time.perf_counter()
        have, wants = await asyncio.to_thread(self._stored, layout)
        reused = len(have)
        downloaded = 0
        if wants:
            emit.log("stderr", f"[cached] packages: {reused} stored, fetching {len(wants)}: {', '.join(w.label for w in wants[:5])}{' ...' if len(wants) > 5 else ''}", "cached")
            emit.phase_started("fetch", progress[0])
            queue: asyncio.Queue[Fetched | None] = asyncio.Queue()
            commits: list[Any] = []
            done = 0
            step = max(1, len(wants) // PROGRESS_STEPS)

            async def store_them() -> None:
                nonlocal done, downloaded
                while (fetched := await queue.get()) is not None:
                    stored, committed = await asyncio.to_thread(self.packages.put, fetched)
                    have[stored.key] = stored
                    commits.append(committed)
                    downloaded += len(fetched.tarball) if fetched.source == "registry" else 0
                    done += 1
                    if done % step == 0 or done == len(wants):
                        share = progress[0] + (progress[1] - progress[0]) * done / len(wants)
                        emit.phase_progress("fetch", share)
                        emit.log("stderr", f"[cached] fetched {done}/{len(wants)} packages ({downloaded / 1e6:.1f} MB from the registry)", "cached")

            # Two at a time: unpacking (zlib) and writing blobs release the GIL for much of their work.
            storers = [asyncio.create_task(store_them()) for _ in range(STORERS)]
            try:
                await self.fetcher.fetch(wants, queue.put_nowait)
            finally:
                for _ in storers:
                    queue.put_nowait(None)
                await asyncio.gather(*storers)
            for committed in commits:
                await asyncio.wrap_future(committed)
            emit.phase_finished("fetch", progress[1])
        digest, tree = await asyncio.to_thread(self._compose, layout, have)
        ms = (time.perf_counter() - started) * 1000
        log.info("dependency tree laid out from packages", extra={"reused": reused, "fetched": len(wants), "bytes_downloaded": downloaded, "files": len(tree.files), "ms": round(ms, 1)})
        return PackageTree(digest, tree, reused, len(wants), downloaded, ms)

    def _compose(self, layout: Layout, have: dict[str, StoredPackage]) -> tuple[Digest, tree_pb2.Tree]:
        with self.store.ingesting():
            tree = compose(layout, {k: p.tree for k, p in have.items()}, self.store.blobs.read_bytes, self.store.blobs.put_bytes)
            failpoint("ingest.before_manifest")
            return self.store.trees.put_tree(tree, blobs_known=True), tree
