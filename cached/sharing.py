"""Blobs between the local store and the shared tier, both ways: what shared results and shared trees both need.

A shared entry is used only whole, so ``bring`` stores nothing unless every
blob the store lacks came (each checked against its digest by the tier, and
again by ``put_verified``); ``send`` queues only what the bucket lacks.
Both block on the bucket: call them from a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterable

from cached.digest import Digest
from cached.remote import RemoteTier
from cached.store import Store

Wanted = Iterable[tuple[Digest, bool]]  # (digest, executable)


def bring(store: Store, tier: RemoteTier, wanted: Wanted) -> int | None:
    """Stores the blobs the store lacks from the bucket; their count, or None (and nothing stored) when one did not come."""
    absent = [(d, x) for d, x in dict.fromkeys(wanted) if not store.blobs.has(d, x)]
    got = tier.get_blobs(list(dict.fromkeys(d for d, _ in absent)))
    if any(d not in got for d, _ in absent):
        return None
    with store.ingesting():
        for digest, executable in absent:
            store.blobs.put_verified(digest, got[digest], executable)
    return len(got)


def send(store: Store, tier: RemoteTier, wanted: Wanted) -> bool:
    """Queues the blobs the bucket lacks (writers only); False when one of them was not queued."""
    executable = dict(reversed(list(wanted)))  # digest -> the mode it is wanted in first: that file is in the store
    queued = True
    for digest in tier.missing(list(executable)):
        with store.blobs.open(digest, executable[digest]) as f:
            queued = tier.put_blob(digest, f.read()) and queued
    return queued
