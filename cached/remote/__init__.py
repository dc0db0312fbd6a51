"""The shared tier: blobs and signed records in an S3-compatible bucket that several daemons share.

It is a cache in front of work, in the manner of bazel-remote's proxy: a
remote read that fails is a miss, a remote write that fails is dropped, and
the local result stands either way. Nothing here raises because of the bucket.

Interface (``RemoteTier``, thread-safe)::

    tier = RemoteTier(RemoteSettings.load("s3://bucket/prefix", endpoint=..., credentials_file=...,
                                          signing_key_file=..., trusted_keys_file=...), observer=...)
    tier.has_blobs(digests) -> set[Digest]         # HEADs in parallel; absent on any error
    tier.missing(digests) -> list[Digest]          # the complement, in order, deduplicated
    tier.get_blob(digest) -> bytes | None          # size and BLAKE3 checked on every download
    tier.get_blobs(digests) -> dict[Digest, bytes] # in parallel, each checked
    tier.put_blob(digest, data) -> bool            # enqueue only: True when queued
    tier.get_record(kind, key) -> bytes | None     # the value, when a trusted key signed it at kind/key
    tier.put_record(kind, key, value) -> bool      # enqueue only; signed on the writer thread
    tier.writable, tier.key_id, tier.queue_depth, tier.queued_bytes, tier.stats, tier.breaker
    tier.flush(timeout) -> bool; tier.close(timeout); tier.collect(older_than_s, dry_run=False)

Kinds are ``ac_kind(tenant)`` (``"ac/<tenant>"``: action results, one
namespace per tenant), ``"deps"``, ``"packages"`` and ``"resolutions"``.
Keys are one path segment (letters, digits, ``. _ : @ + = -``, at most 255,
no ``..``): hash or hex-encode anything else. A bad name raises
``InvalidName``, a bug of the caller, never a bucket condition.

Layout: ``PREFIX/cas/blake3/<hash>``, ``PREFIX/ac/<tenant>/<key>``,
``PREFIX/deps/<key>``, ``PREFIX/packages/<key>``, ``PREFIX/resolutions/<key>``.
Only BLAKE3 blobs are shared (a store using xxh3_128 cannot use the tier:
anyone who can write the bucket could craft collisions).

Trust: every record is a ``cached.v1.SignedRecord`` (proto/cached/v1/remote.proto)
signed with Ed25519 over a domain string, kind, key and the value's digest
(``envelope.py``). Readers accept only records a key in their trusted set
signed for exactly that kind and key; anything else (unsigned, unknown key,
value, key, kind or signature changed, malformed) is a miss, a warning and
``stats.rejected[reason]``. Blobs need no signature: their name is their hash.
Only a tier built with a signing key writes; without one it never sends a PUT
or a DELETE, so a read-only daemon cannot poison the bucket, whatever its
credentials allow.

Threads, not asyncio: boto3 blocks. Reads block the calling thread for at
most about the connect + read timeout per attempt (1 s + 3 s, 2 attempts by
default), and not at all while the breaker is open: call them from a worker
thread (``await asyncio.to_thread(tier.get_record, kind, key)``). Writes go
through a bounded queue (entries and bytes) drained by ``writer_threads``
daemon threads; ``put_*`` never blocks and is safe on the event loop. Full
queue, bucket error, open breaker: the entry is dropped and counted in
``stats.dropped[reason]``.

Circuit breaker (``breaker.py``): after ``failure_threshold`` (5) consecutive
failures, every remote read is an immediate miss and every write is dropped
for ``cooldown_s`` (30 s); then one request probes, and its success closes
the breaker. A bucket that is down costs builds a few seconds once, then
nothing.

Metrics: ``stats`` holds plain counters (bytes in/out, hits, misses, written,
dropped, rejected, errors and skipped by op or reason; ``snapshot()``); pass
an ``Observer`` subclass to also feed Prometheus (``request(op, seconds,
outcome)`` for a latency histogram, the rest for counters). ``queue_depth`` is
for a gauge callback.

What the pipeline integration must do:

- Build ``RemoteSettings.from_args(args)`` in ``cached serve`` (declare the
  flags with ``add_remote_options``; a ``RemoteConfigError`` is a usage error
  at startup), refuse it when the store's digest function is not BLAKE3, make
  one ``RemoteTier`` per daemon, ``close()`` it when the daemon drains.
- Reads: local first; on a local miss ask the tier (off the event loop), and
  store what it returns locally before using it (then the next hit is local).
  For an action hit: ``get_record(ac_kind(tenant), action_key)``, then
  ``missing()``/``get_blobs()`` for the outputs the local store lacks, and
  treat any blob that does not come back as a miss of the whole action.
- Writes: after a local commit, ``put_blob`` the outputs the bucket lacks
  (``missing()`` first, from a worker thread, avoids re-uploading) and then
  ``put_record``. Records can reach the bucket before their blobs, or without
  them when a blob is dropped: readers must (and, per the previous point, do)
  treat a record whose blobs are missing as a miss.
- Record values are the daemon's own serialized records (ActionRecord,
  DepsRecord, ...); this package never parses them.
- Feed ``cached_remote_errors`` and friends through an ``Observer``.

Importing this package loads nothing heavy: the names below are resolved on
first use, so the CLI can declare flags without loading boto3.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "RemoteTier": "cached.remote.tier",
    "RemoteSettings": "cached.remote.settings",
    "add_remote_options": "cached.remote.settings",
    "parse_remote_url": "cached.remote.settings",
    "Observer": "cached.remote.stats",
    "RemoteStats": "cached.remote.stats",
    "ac_kind": "cached.remote.names",
    "RECORD_KINDS": "cached.remote.names",
    "RemoteConfigError": "cached.remote.errors",
    "InvalidName": "cached.remote.errors",
    "RemoteUnavailable": "cached.remote.errors",
    "generate_keypair": "cached.remote.signing",
    "collect": "cached.remote.gc",
    "CollectResult": "cached.remote.gc",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cached.remote' has no attribute {name!r}")
    return getattr(import_module(module), name)
