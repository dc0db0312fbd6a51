"""Verify: re-hash every blob; with repair, drop what names bad content so the next build is clean.

The store quarantines corrupt files and deletes the roots that name corrupt
or missing content. This wraps it to leave a ``corrupt`` tombstone for each
deleted root, so the next build of those inputs misses with reason
``corrupt`` (and rebuilds) instead of blaming the sources, and never hits
with wrong bytes.
"""

from __future__ import annotations

import logging

from cached.operate.metrics import BuildMetrics
from cached.store import Removed, Store, Tombstones
from cached.store.verify import VerifyReport

log = logging.getLogger("cached.operate.verify")


class Verifier:
    def __init__(self, store: Store, tombstones: Tombstones, metrics: BuildMetrics) -> None:
        self.store = store
        self.tombstones = tombstones
        self.metrics = metrics

    def verify(self, repair: bool = False) -> VerifyReport:
        """Blocking (it reads every blob): run it in a thread."""
        before = {(e.kind, e.key): e.owner for e in self.store.iter_roots()} if repair else {}
        report = self.store.verify(repair=repair)
        self.metrics.corrupt_blobs.inc(len(report.corrupt))
        if repair and report.roots_deleted:
            after = {(e.kind, e.key) for e in self.store.iter_roots()}
            # The roots gone during the repair: those it deleted (a concurrent eviction is
            # tombstoned already and is rewritten here as corrupt, which it may well have been).
            gone = [Removed(kind, key, owner) for (kind, key), owner in before.items() if (kind, key) not in after]
            self.tombstones.record(gone, "corrupt").result()
        log.info("verify", extra={"repair": repair, "files_checked": report.files_checked, "corrupt": len(report.corrupt),
                                  "missing": len(report.missing), "roots_deleted": report.roots_deleted})
        return report
