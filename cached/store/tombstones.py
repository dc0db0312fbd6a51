"""Tombstones: a small record of what eviction, purge and repair removed.

A miss on inputs whose result was removed should say so (``evicted``,
``purged`` or ``corrupt``) rather than blame the sources. The store forgets a
deleted root entirely, so this keeps one short record per removed root in the
index's ``meta`` database, under its own prefix. Records are bounded: past
``MAX_TOMBSTONES`` the oldest are dropped (a forgotten tombstone only makes a
miss explain itself less precisely).

This module must never be read on the hit path: the pipeline consults it only
after the action lookup missed.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import lmdb

from cached.store.index import Index
from cached.v1 import operate_pb2

log = logging.getLogger("cached.store.tombstones")

PREFIX = b"tomb\x00"
MAX_TOMBSTONES = 100_000
CAUSES = ("evicted", "purged", "corrupt")
DETAILS = {
    "evicted": "the result of these same inputs was evicted by garbage collection",
    "purged": "the result of these same inputs was purged",
    "corrupt": "the stored result of these inputs failed verification and was dropped",
}
TREE_DETAILS = {  # for a dependency tree (a deps key), which is no build's "result"
    "evicted": "the dependency tree of these same inputs was evicted by garbage collection",
    "purged": "the dependency tree of these same inputs was purged (it held a purged package, or was purged by its key)",
    "corrupt": "the stored dependency tree of these inputs failed verification and was dropped",
}


@dataclass(frozen=True)
class Removed:
    kind: str
    key: bytes
    owner: str


def _key(kind: str, key: bytes) -> bytes:
    return PREFIX + kind.encode() + b"\x00" + key


class Tombstones:
    """``store.tombstones``: one short record per removed root, read only after a miss."""

    def __init__(self, index: Index, *, limit: int = MAX_TOMBSTONES) -> None:
        self.index = index
        self.limit = limit

    def record(self, removed: Iterable[Removed], cause: str) -> concurrent.futures.Future[int]:
        """Writes one tombstone per removed root (one write transaction); resolves to the count."""
        if cause not in CAUSES:
            raise ValueError(f"tombstone cause {cause!r}: one of {', '.join(CAUSES)}")
        now = int(time.time() * 1000)
        rows = [(_key(r.kind, r.key), operate_pb2.Tombstone(cause=cause, removed_unix_ms=now, owner=r.owner).SerializeToString()) for r in removed]
        meta = self.index.db("meta")
        limit = self.limit

        def fn(txn: lmdb.Transaction) -> int:
            for k, v in rows:
                txn.put(k, v, db=meta)
            _trim(txn, meta, limit)
            return len(rows)

        return self.index.submit(fn)

    def lookup(self, kind: str, key: bytes) -> operate_pb2.Tombstone | None:
        raw = self.index.get("meta", _key(kind, key))
        return operate_pb2.Tombstone.FromString(raw) if raw is not None else None

    def reason(self, kind: str, key: bytes) -> tuple[str, str] | None:
        """(reason, detail) for a miss on this root, when something removed it."""
        tomb = self.lookup(kind, key)
        if tomb is None:
            return None
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(tomb.removed_unix_ms / 1000))
        return tomb.cause, f"{DETAILS.get(tomb.cause, tomb.cause)} ({when})"

    def deps_reason(self, deps_key: str) -> tuple[str, str] | None:
        """(reason, detail) for a deps lookup that missed on ``deps_key``, when something removed that very
        tree: the dependency layer reports ``purged`` (or ``evicted``, ``corrupt``) instead of a guess."""
        tomb = self.lookup("deps", deps_key.encode())
        if tomb is None:
            return None
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(tomb.removed_unix_ms / 1000))
        return tomb.cause, f"{TREE_DETAILS.get(tomb.cause, tomb.cause)} ({when})"

    def count(self) -> int:
        return len(self.index.items("meta", PREFIX))


def _trim(txn: lmdb.Transaction, meta: object, limit: int) -> None:
    """Drops the oldest tombstones beyond ``limit`` (counts keys; reads records only when over it)."""
    cursor = txn.cursor(db=meta)
    keys: list[bytes] = []
    if cursor.set_range(PREFIX):
        for k in cursor.iternext(keys=True, values=False):
            if not bytes(k).startswith(PREFIX):
                break
            keys.append(bytes(k))
    if len(keys) <= limit:
        return
    by_age = sorted((operate_pb2.Tombstone.FromString(txn.get(k, db=meta)).removed_unix_ms, k) for k in keys)
    for _, k in by_age[: len(keys) - limit]:
        txn.delete(k, db=meta)
    log.info("dropped old tombstones", extra={"dropped": len(keys) - limit})
