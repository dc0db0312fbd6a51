"""Purge: clear one app, one tenant, one dependency tree, stale entries or everything, live.

An app's purge sets its watermark: its lookups then ignore every entry made
before it (the pipeline reports ``purged``), while other apps that share the
same action entries keep hitting; its Vite cache goes too. The other forms
delete roots and then sweep, which reclaims the blobs no remaining root, lease
or running build needs, so a purge while builds run never fails them. Every
deleted root leaves a ``purged`` tombstone for the next miss to report.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field

from cached.operate.metrics import BuildMetrics
from cached.store import Removed, RootEntry, Store, Tombstones
from cached.store.collect import Held

log = logging.getLogger("cached.operate.purge")

ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
SHOWN_KEYS = 20


@dataclass(frozen=True)
class PurgeSelector:
    """Exactly one of: app ("tenant/app"), tenant, deps_key, older_than_s, all."""

    app: str = ""
    tenant: str = ""
    deps_key: str = ""
    older_than_s: float = 0.0
    all: bool = False

    def __post_init__(self) -> None:
        chosen = [n for n, v in (("app", self.app), ("tenant", self.tenant), ("deps", self.deps_key), ("older_than", self.older_than_s), ("all", self.all)) if v]
        if len(chosen) != 1:
            raise ValueError("give exactly one of --app TENANT/APP, --tenant T, --deps KEY, --older-than AGE, --all"
                             + (f" (got {', '.join(chosen)})" if chosen else ""))
        if self.app:
            tenant, sep, app = self.app.partition("/")
            if not sep or not ID.match(tenant) or not ID.match(app):
                raise ValueError(f"--app {self.app!r}: use TENANT/APP (lowercase letters, digits, '_' and '-')")
        if self.tenant and not ID.match(self.tenant):
            raise ValueError(f"--tenant {self.tenant!r}: lowercase letters, digits, '_' and '-'")
        if self.older_than_s < 0:
            raise ValueError("--older-than cannot be negative")

    @property
    def name(self) -> str:
        return "app" if self.app else "tenant" if self.tenant else "deps" if self.deps_key else "older_than" if self.older_than_s else "all"


@dataclass
class PurgeReport:
    selector: str
    dry_run: bool
    entries: int = 0
    bytes: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    watermark_set: bool = False
    blobs_deleted: int = 0
    bytes_freed: int = 0
    bytes_after: int = 0
    held: list[Held] = field(default_factory=list)  # what the sweep could not free yet, by reason


class Purger:
    def __init__(self, store: Store, tombstones: Tombstones, metrics: BuildMetrics) -> None:
        self.store = store
        self.tombstones = tombstones
        self.metrics = metrics

    def select(self, selector: PurgeSelector) -> list[RootEntry]:
        """The entries the purge concerns: for an app, those it owns (hidden from it from now on)."""
        roots = self.store.iter_roots()
        actions, vite, deps = self.store.actions.kind, self.store.vitecache.kind, self.store.deps.kind
        if selector.all:
            return list(roots)
        if selector.app:
            # What the watermark hides from the app: the action entries it made (others' hide too, but stay
            # theirs), and its Vite cache. Dependency trees are shared by content and stay.
            vite_key = self.store.vitecache.key(*selector.app.split("/", 1))
            return [e for e in roots if (e.kind == actions and e.owner == selector.app) or (e.kind == vite and e.key == vite_key)]
        if selector.tenant:
            prefix = selector.tenant.encode() + b"/"
            return [e for e in roots if e.kind in (actions, vite) and e.key.startswith(prefix)]
        if selector.deps_key:
            return [e for e in roots if e.kind == deps and e.key == selector.deps_key.encode()]
        cutoff = time.time_ns() - int(selector.older_than_s * 1e9)
        return [e for e in roots if e.last_access_ns < cutoff]

    def purge(self, selector: PurgeSelector, *, dry_run: bool = False) -> PurgeReport:
        """Blocking (it sweeps): run it in a thread."""
        chosen = self.select(selector)
        report = PurgeReport(selector.name, dry_run, entries=len(chosen), bytes=sum(e.size for e in chosen))
        for e in chosen:
            report.by_kind[e.kind] = report.by_kind.get(e.kind, 0) + 1
        report.keys = [f"{e.kind}/{e.key.decode(errors='replace')}" for e in chosen[:SHOWN_KEYS]]
        if dry_run:
            report.bytes_after = self.store.stats().bytes
            return report
        if selector.app:
            self.store.watermarks.set(selector.app).result()
            report.watermark_set = True
            # The app's own Vite cache goes; shared action entries stay for the other apps.
            removing = [e for e in chosen if e.kind == self.store.vitecache.kind]
        else:
            removing = chosen
        by_kind: dict[str, list[bytes]] = {}
        for e in removing:
            by_kind.setdefault(e.kind, []).append(e.key)
        for kind, keys in by_kind.items():
            self.store.delete_roots(kind, keys).result()
        if removing:
            self.tombstones.record([Removed(e.kind, e.key, e.owner) for e in removing], "purged").result()
        swept = self.store.sweep()
        report.blobs_deleted, report.bytes_freed, report.bytes_after = swept.blobs_deleted, swept.bytes_freed, swept.bytes_after
        report.held = swept.held
        self.metrics.observe_purge(selector.name, report.entries, swept.bytes_freed)
        log.info("purge", extra={"selector": selector.name, "entries": report.entries, "bytes": report.bytes, "bytes_freed": swept.bytes_freed})
        return report
