"""A build's answer: the Metrics event, the log line, and the Result, the same for a hit and a miss.

This module must never touch the store: everything it reports is already decided.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from cached.execution.events import EventStream
from cached.v1 import cached_pb2, records_pb2

if TYPE_CHECKING:
    from cached.deps.layer import Dependencies
    from cached.pipeline.hit import Keys

log = logging.getLogger("cached.pipeline")

HIT = cached_pb2.CacheDecision.HIT


def build_result(
    events: EventStream, keys: "Keys", record: records_pb2.ActionRecord, started: float, cache: str, reason: str,
    *, bytes_ingested: int, lockfile: bytes = b"", deps: "Dependencies | None" = None,
) -> cached_pb2.BuildResult:
    """Emits the Metrics event (always before any deploy event) and returns the Result."""
    duration = (time.perf_counter() - started) * 1000
    outputs = [cached_pb2.OutputFile(path=f.path, digest=f.digest, executable=f.executable) for f in record.outputs.files]
    total = sum(f.digest.size for f in record.outputs.files)
    metrics = cached_pb2.Metrics(
        decisions=events.decisions, phase_ms=events.phase_ms, output_files=len(outputs),
        output_bytes=total, bytes_ingested=bytes_ingested, duration_ms=duration,
    )
    if deps is not None:
        metrics.deps_method, metrics.deps_files, metrics.deps_bytes, metrics.deps_ms = deps.method, deps.files, deps.bytes, deps.ms
        metrics.packages_reused, metrics.packages_fetched = deps.packages_reused, deps.packages_fetched
        metrics.package_bytes_downloaded = deps.bytes_downloaded
    deps_restored = deps.bytes if deps is not None and any(d.layer == "deps" and d.result == HIT for d in events.decisions) else 0
    metrics.bytes_restored = total if cache == "hit" else deps_restored
    events.metrics = metrics
    events.emit(cached_pb2.BuildEvent(metrics=metrics))
    log.info("build", extra={"metrics": {
        "cache": cache, "reason": reason, "action_key": keys.action_key, "duration_ms": round(duration, 2), "phase_ms": dict(events.phase_ms),
        "output_files": len(outputs), "output_bytes": total, "bytes_ingested": bytes_ingested, "bytes_restored": metrics.bytes_restored,
        "decisions": [{"layer": d.layer, "result": cached_pb2.CacheDecision.Result.Name(d.result).lower(), "tier": d.tier, "reason": d.reason} for d in events.decisions],
    }})
    return cached_pb2.BuildResult(
        action_key=keys.action_key, output_tree=record.output_tree, outputs=outputs, phase_ms=events.phase_ms,
        duration_ms=duration, cache=cache, reason=reason, lockfile=lockfile, log=record.log,
    )
