"""The hit path: one read transaction of the index, then the answer.

A build's lookup reads, in one transaction, the app's last build, the
action's entry, the app's purge watermark and (for files sent by digest whose
ownership is not checked yet) whether the tenant may use them. A hit leases
the outputs and notes its access time, both in memory. Only when the app's
last action changes is its new record made (with a keyed hash of each env
value) and queued for the writer; the answer never waits for that write, and
until it commits the ledger answers for it, so the app's next lookup sees it.

This module must never read a file, start a process, open a second
transaction on a hit, or wait for a write.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cached.digest import Digest
from cached.errors import PreconditionFailed
from cached.execution.events import EventStream
from cached.pipeline.observer import BuildObserver
from cached.request.spec import BuildSpec
from cached.store import RootEntry, Store
from cached.v1 import cached_pb2, records_pb2

log = logging.getLogger("cached.pipeline.hit")

HIT = cached_pb2.CacheDecision.HIT
ByDigest = Sequence[tuple[str, Digest]]  # (path, digest) of files sent by digest, ownership not yet checked


@dataclass
class Keys:
    action_key: str
    sources: Digest
    deps_key: str
    make_app_record: Callable[[], records_pb2.AppRecord] = field(repr=False)
    _app_record: records_pb2.AppRecord | None = field(default=None, repr=False)

    @property
    def app_record(self) -> records_pb2.AppRecord:
        """What this build is made of, to record and compare: made on first use (a miss, or a changed app)."""
        if self._app_record is None:
            self._app_record = self.make_app_record()
        return self._app_record


@dataclass(frozen=True)
class Lookup:
    previous: records_pb2.AppRecord | None  # the app's last build (a queued record included)
    entry: RootEntry | None  # the action's entry, or None (absent, or not looked up)
    purged: bool  # the entry predates the app's purge watermark

    @property
    def hit(self) -> bool:
        return self.entry is not None and not self.purged


def refuse_unowned(spec: BuildSpec, by_digest: ByDigest, unowned: Sequence[Digest]) -> None:
    """The error a request gets for a file whose blob the tenant may not use (as validation words it)."""
    if not unowned:
        return
    missing = set(unowned)
    path, digest = next((p, d) for p, d in by_digest if d in missing)
    raise PreconditionFailed(
        f"files[{path!r}]: blob {digest} is not in the store for tenant {spec.tenant}; upload it with ContentStore.UploadBlobs first"
    )


class AppLedger:
    """Each app's last build: the stored record, or the one queued for the writer and not yet committed."""

    def __init__(self, store: Store, observer: BuildObserver) -> None:
        self.store = store
        self.observer = observer
        self._queued: dict[str, tuple[records_pb2.AppRecord, concurrent.futures.Future[None]]] = {}
        self._lock = threading.Lock()

    def current(self, owner: str, stored: records_pb2.AppRecord | None) -> records_pb2.AppRecord | None:
        with self._lock:
            queued = self._queued.get(owner)
        return queued[0] if queued is not None else stored

    def get(self, tenant: str, app: str) -> records_pb2.AppRecord | None:
        with self._lock:
            queued = self._queued.get(f"{tenant}/{app}")
        return queued[0] if queued is not None else self.store.apps.get(tenant, app)

    def record(
        self, spec: BuildSpec, keys: Keys, previous: records_pb2.AppRecord | None, decisions: Sequence[cached_pb2.CacheDecision],
    ) -> concurrent.futures.Future[None]:
        """Queues the app's new record and tells the observer; returns the write's future (a hit never waits on it)."""
        record = records_pb2.AppRecord()
        record.CopyFrom(keys.app_record)
        record.last_build_unix_ms = int(time.time() * 1000)
        record.builds = previous.builds + 1 if previous is not None else 1
        owner = spec.owner
        future = self.store.apps.put(spec.tenant, spec.app, record)
        with self._lock:
            self._queued[owner] = (record, future)

        def committed(done: concurrent.futures.Future[None]) -> None:
            with self._lock:
                if self._queued.get(owner, (None, None))[1] is done:
                    del self._queued[owner]
            if done.exception() is not None:
                log.warning("could not record the app's last build", extra={"owner": owner, "error": str(done.exception())})

        future.add_done_callback(committed)
        self.observer.app_recorded(spec, keys.sources, record, previous, decisions)
        return future


class HitPath:
    def __init__(self, store: Store, apps: AppLedger) -> None:
        self.store = store
        self.apps = apps

    def lookup(self, spec: BuildSpec, action_key: str | None, by_digest: ByDigest = ()) -> Lookup:
        """One read transaction; ``action_key=None`` (a forced build) reads only the app's record."""
        found = self.store.lookups.action(spec.tenant, spec.app, action_key, owned=[d for _, d in by_digest])
        refuse_unowned(spec, by_digest, found.unowned)
        return Lookup(self.apps.current(spec.owner, found.app), found.action, found.purged)

    def answer(self, spec: BuildSpec, keys: Keys, found: Lookup, events: EventStream,
               shared: records_pb2.ActionRecord | None = None) -> records_pb2.ActionRecord:
        """The stored result (or ``shared``, one the shared tier brought); the app's record is queued
        only when its last action changes."""
        if shared is not None:
            record = shared
            events.decision("action", HIT, "hit", "identical inputs were built by another daemon (the shared tier)", "remote")
        else:
            assert found.entry is not None
            record = records_pb2.ActionRecord.FromString(found.entry.value)
            events.decision("action", HIT, "hit", "identical inputs were built before", "local")
        if found.previous is None or found.previous.last_action_key != keys.action_key:
            self.apps.record(spec, keys, found.previous, events.decisions)
        return record
