"""Action results through the shared tier: looked up on a local miss, published after a local commit.

A remote result is used only whole: its signed record (``cached/remote``
checks the signature, the kind ``ac/<tenant>`` and the key), its output
manifest matching the record's output tree digest, and every blob it names,
each checked against its digest as it arrives. Everything is stored locally
before the answer, so the next hit on this daemon is local. A result older
than the app's purge watermark is not taken: a purge holds across daemons
that read it.

Publishing runs behind the local commit, on one worker thread: it asks the
bucket which blobs it lacks, queues those and then the record (the tier's
bounded queue drops, never blocks). A build never waits for it, and a
bucket that is down costs nothing but the counted drops.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading

from cached import sharing
from cached.digest import Digest
from cached.remote import RemoteTier, ac_kind
from cached.request.spec import BuildSpec
from cached.store import Store
from cached.store.trees import serialise
from cached.v1 import records_pb2

log = logging.getLogger("cached.pipeline.shared")

MAX_PENDING = 256  # publications waiting for the worker; past it they are dropped, with a warning


class SharedActions:
    def __init__(self, store: Store, tier: RemoteTier) -> None:
        self.store = store
        self.tier = tier
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cached-publish")
        self._pending = 0
        self._lock = threading.Lock()

    async def fetch(self, spec: BuildSpec, action_key: str, root_key: bytes) -> records_pb2.ActionRecord | None:
        """The result another daemon built for these inputs, now stored here too; None on any doubt."""
        return await asyncio.to_thread(self._fetch, spec, action_key, root_key)

    def _fetch(self, spec: BuildSpec, action_key: str, root_key: bytes) -> records_pb2.ActionRecord | None:
        value = self.tier.get_record(ac_kind(spec.tenant), action_key)
        if value is None:
            return None
        try:
            record = records_pb2.ActionRecord.FromString(value)
        except Exception:  # noqa: BLE001 - a signed value this daemon cannot read is a miss
            log.warning("shared action result unreadable", extra={"tenant": spec.tenant, "action_key": action_key})
            return None
        manifest = serialise(record.outputs)
        tree = Digest.from_proto(record.output_tree)
        if record.tenant != spec.tenant or self.store.hasher.bytes(manifest) != tree:
            log.warning("shared action result does not match its inputs", extra={"tenant": spec.tenant, "action_key": action_key})
            return None
        if record.created_unix_ms * 1_000_000 < self.store.watermarks.get(spec.owner):
            return None  # built before this app's purge
        log_digest = Digest.from_proto(record.log)
        files = [(Digest.from_proto(f.digest), f.executable) for f in record.outputs.files]
        fetched = sharing.bring(self.store, self.tier, [(log_digest, False), *files])
        if fetched is None:
            return None  # a record whose blobs did not all come is a miss of the whole action
        with self.store.ingesting():
            self.store.blobs.put_bytes(manifest)
            self.store.blobs.note_owner(spec.tenant, [tree, log_digest, *(d for d, _ in files)])
            self.store.actions.put(root_key, value, blobs=(log_digest,), trees=(tree,), owner=spec.owner).result()
        log.info("action result from the shared tier", extra={"tenant": spec.tenant, "app": spec.app, "blobs_fetched": fetched})
        return record

    def publish(self, spec: BuildSpec, action_key: str, record: records_pb2.ActionRecord) -> None:
        """Queues the result for the bucket (writers only); returns at once."""
        if not self.tier.writable:
            return
        with self._lock:
            if self._pending >= MAX_PENDING:
                log.warning("shared tier publications backed up; this result is not published", extra={"tenant": spec.tenant})
                return
            self._pending += 1
        self._pool.submit(self._publish, spec.tenant, action_key, record)

    def _publish(self, tenant: str, action_key: str, record: records_pb2.ActionRecord) -> None:
        try:
            wanted = [(Digest.from_proto(record.log), False), (Digest.from_proto(record.output_tree), False)]
            wanted += [(Digest.from_proto(f.digest), f.executable) for f in record.outputs.files]
            sharing.send(self.store, self.tier, wanted)
            self.tier.put_record(ac_kind(tenant), action_key, record.SerializeToString())
        except Exception as e:  # noqa: BLE001 - a publication that fails is a miss elsewhere, never an error here
            log.warning("publishing to the shared tier failed", extra={"tenant": tenant, "error": str(e)})
        finally:
            with self._lock:
                self._pending -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
