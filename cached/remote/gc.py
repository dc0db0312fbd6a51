"""Garbage collection for buckets without a lifecycle rule: delete what was written long ago.

A lifecycle rule on the bucket (expire after N days) is the better tool; this
is for stores that have none (MinIO without ILM, a test bucket). It lists the
tier's own directories under the prefix (cas/, ac/, deps/, packages/,
resolutions/: never anything else the bucket holds) and deletes objects whose
LastModified is older than the age, a thousand per DeleteObjects call.

Age is time since the last write, not the last read (S3 keeps no access
time): a blob hit every day is still deleted once it is old, and the next
daemon that builds it writes it again. A record may then name blobs that are
gone; readers already treat a missing blob as a miss, so that costs a build,
never a wrong result. Only writers collect: ``RemoteTier.collect`` refuses a
read-only tier, and the CLI needs ``--remote-signing-key``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from cached.remote.client import describe, make_client
from cached.remote.errors import RemoteConfigError, RemoteUnavailable
from cached.remote.names import AC, RECORD_KINDS, Layout
from cached.remote.settings import RemoteSettings

DIRECTORIES = ("cas", AC, *RECORD_KINDS)
DELETE_BATCH = 1000  # DeleteObjects' limit


@dataclass
class CollectResult:
    deleted: int = 0
    bytes_deleted: int = 0
    kept: int = 0
    bytes_kept: int = 0
    failed: list[str] = field(default_factory=list)  # keys DeleteObjects reported as not deleted
    dry_run: bool = False


def collect_objects(s3: Any, bucket: str, layout: Layout, older_than_s: float, *, dry_run: bool = False,
                    now: float | None = None) -> CollectResult:
    """Deletes the tier's objects last written more than ``older_than_s`` before ``now``; RemoteUnavailable on a bucket error."""
    if older_than_s <= 0:
        raise RemoteConfigError("remote gc: --older-than must be positive")
    cutoff = (time.time() if now is None else now) - older_than_s
    result = CollectResult(dry_run=dry_run)
    batch: dict[str, int] = {}  # key -> size, waiting for one DeleteObjects
    try:
        for directory in DIRECTORIES:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{layout.root}{directory}/"):
                for obj in page.get("Contents", []):
                    if obj["LastModified"].timestamp() >= cutoff:
                        result.kept += 1
                        result.bytes_kept += obj["Size"]
                        continue
                    result.deleted += 1
                    result.bytes_deleted += obj["Size"]
                    if not dry_run:
                        batch[obj["Key"]] = obj["Size"]
                        if len(batch) == DELETE_BATCH:
                            _delete(s3, bucket, batch, result)
        if batch:
            _delete(s3, bucket, batch, result)
    except RemoteUnavailable:
        raise
    except Exception as e:
        raise RemoteUnavailable(f"remote gc on bucket {bucket}: {describe(e)}") from None
    return result


def _delete(s3: Any, bucket: str, batch: dict[str, int], result: CollectResult) -> None:
    response = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
    for error in response.get("Errors", []):
        key = error.get("Key", "?")
        result.failed.append(key)
        result.deleted -= 1
        result.bytes_deleted -= batch.get(key, 0)
    batch.clear()


def collect(settings: RemoteSettings, older_than_s: float, *, dry_run: bool = False, now: float | None = None) -> CollectResult:
    """``cached gc --remote``: the same collection, straight from settings, without starting a tier's threads."""
    if not settings.writer:
        raise RemoteConfigError("gc --remote deletes objects: only a writer may, give it --remote-signing-key")
    return collect_objects(make_client(settings), settings.bucket, Layout(settings.prefix), older_than_s,
                           dry_run=dry_run, now=now)
