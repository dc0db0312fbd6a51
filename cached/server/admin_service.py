"""Admin: operators' calls. Translates between the API and the operations objects, nothing more.

Calls that read every blob or sweep (purge, collect, verify) run in a worker
thread, so builds on the event loop never wait for them. Bad arguments are
INVALID_ARGUMENT. Authorisation (an admin token when tokens are configured)
is the auth interceptor's job, before any of this runs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc

from cached.pipeline.pipeline import BuildPipeline
from cached.execution.steps import StepRunner
from cached.operate.operations import Operations
from cached.operate.package_purge import PackagePurgeReport
from cached.operate.packages import PackageSelector
from cached.operate.purge import PurgeSelector
from cached.operate.stats import Stats
from cached.operate.gc import Held
from cached.v1 import admin_pb2, admin_pb2_grpc

SHOWN_APPS = 100


class AdminService(admin_pb2_grpc.AdminServicer):
    def __init__(self, pipeline: BuildPipeline, steps: StepRunner, root: Path, operations: Operations) -> None:
        self.pipeline = pipeline
        self.steps = steps
        self.root = root
        self.ops = operations

    async def Stats(self, request: admin_pb2.StatsRequest, context: grpc.aio.ServicerContext) -> admin_pb2.StatsResponse:
        counters = self.pipeline.counters
        stats = await asyncio.to_thread(self.ops.stats, counters.builds, counters.action_hits)  # reads every entry
        return stats_response(stats, root=str(self.root), processes_started=self.steps.processes_started)

    async def Purge(self, request: admin_pb2.PurgeRequest, context: grpc.aio.ServicerContext) -> admin_pb2.PurgeResponse:
        try:
            selector = PurgeSelector(app=request.app, tenant=request.tenant, deps_key=request.deps_key,
                                     older_than_s=float(request.older_than_seconds), all=request.all)
        except ValueError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        r = await asyncio.to_thread(self.ops.purger.purge, selector, dry_run=request.dry_run)
        return admin_pb2.PurgeResponse(
            entries=r.entries, bytes=r.bytes, by_kind=r.by_kind, keys=r.keys, dry_run=r.dry_run, blobs_deleted=r.blobs_deleted,
            bytes_freed=r.bytes_freed, bytes_after=r.bytes_after, watermark_set=r.watermark_set,
            held=held_bytes(r.held), bytes_held=sum(h.bytes for h in r.held),
        )

    async def CollectGarbage(self, request: admin_pb2.CollectGarbageRequest, context: grpc.aio.ServicerContext) -> admin_pb2.CollectGarbageResponse:
        if request.HasField("max_bytes") and request.max_bytes < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "max_bytes cannot be negative")
        max_bytes = request.max_bytes if request.HasField("max_bytes") else None
        r = await asyncio.to_thread(self.ops.gc.collect, max_bytes, dry_run=request.dry_run)
        return admin_pb2.CollectGarbageResponse(
            roots_evicted=r.roots_evicted, blobs_deleted=r.blobs_deleted, bytes_freed=r.bytes_freed, bytes_before=r.bytes_before,
            bytes_after=r.bytes_after, trees_removed=r.trees_removed, blobs_kept_protected=r.blobs_kept_protected,
            seconds=r.seconds, dry_run=r.dry_run, evicted=[f"{kind}/{key.decode(errors='replace')}" for kind, key in r.evicted],
            held=held_bytes(r.held), bytes_held=r.bytes_held,
        )

    async def Verify(self, request: admin_pb2.VerifyRequest, context: grpc.aio.ServicerContext) -> admin_pb2.VerifyResponse:
        r = await asyncio.to_thread(self.ops.verifier.verify, request.repair)
        return admin_pb2.VerifyResponse(
            files_checked=r.files_checked, corrupt=r.corrupt, missing=[str(d) for d in r.missing], quarantined=r.quarantined,
            roots_deleted=r.roots_deleted, trees_removed=r.trees_removed, seconds=r.seconds, ok=r.ok,
        )

    async def Explain(self, request: admin_pb2.ExplainRequest, context: grpc.aio.ServicerContext) -> admin_pb2.ExplainResponse:
        if not request.tenant or not request.app:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "explain needs a tenant and an app")
        response = self.ops.explainer.explain(request.tenant, request.app)
        if not response.found:
            await context.abort(grpc.StatusCode.NOT_FOUND, response.summary)
        return response

    async def PurgePackage(self, request: admin_pb2.PurgePackageRequest, context: grpc.aio.ServicerContext) -> admin_pb2.PurgePackageResponse:
        try:
            selector = PackageSelector.parse(request.package, version_required=True)
        except ValueError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        report = await asyncio.to_thread(self.ops.package_purger.purge, selector, dry_run=request.dry_run)
        return package_purge_response(report)

    async def ExplainPackage(self, request: admin_pb2.ExplainPackageRequest, context: grpc.aio.ServicerContext) -> admin_pb2.ExplainPackageResponse:
        try:
            selector = PackageSelector.parse(request.package, version_required=False)
        except ValueError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        if request.limit < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "limit cannot be negative (0: the default)")
        return await asyncio.to_thread(self.ops.package_explainer.explain, selector, request.limit)  # reads every tree


def package_purge_response(r: PackagePurgeReport) -> admin_pb2.PurgePackageResponse:
    response = admin_pb2.PurgePackageResponse(
        name=r.selector.name, version=r.selector.version, entries=r.entries, bytes=r.bytes, keys=r.keys,
        apps=r.apps[:SHOWN_APPS], apps_count=len(r.apps), late_entries=r.late_entries, dry_run=r.dry_run,
        blobs_deleted=r.blobs_deleted, bytes_freed=r.bytes_freed, bytes_after=r.bytes_after,
        held=held_bytes(r.held), bytes_held=sum(h.bytes for h in r.held),
    )
    for kind, total in r.by_kind.items():
        response.by_kind[kind].CopyFrom(admin_pb2.KindRemoved(entries=total.entries, bytes=total.bytes))
    return response


def held_bytes(held: list[Held]) -> list[admin_pb2.HeldBytes]:
    return [admin_pb2.HeldBytes(reason=h.reason, blobs=h.count, bytes=h.bytes, free_from_unix_ms=h.free_from_ns // 1_000_000,
                                free_all_unix_ms=h.free_all_ns // 1_000_000, detail=h.describe()) for h in held]


def stats_response(stats: Stats, *, root: str, processes_started: int) -> admin_pb2.StatsResponse:
    response = admin_pb2.StatsResponse(
        blobs=stats.blob_count, bytes=stats.bytes, actions=stats.actions, apps=stats.apps, digest_function=stats.digest_function,
        root=root, processes_started=processes_started, builds=stats.builds, action_hits=stats.action_hits,
        hit_rate=stats.hit_rate, builds_failed=stats.builds_failed, evictions=stats.evictions, max_bytes=stats.max_bytes,
        metrics_address=stats.metrics_address, shadow_builds=stats.shadow_builds, shadow_bytes=stats.shadow_bytes,
        shadow_entries=stats.shadow_entries,
    )
    response.entries.update(stats.entries)
    response.app_stats.extend(admin_pb2.AppStats(
        tenant=a.tenant, app=a.app, last_action_key=a.last_action_key, last_build_unix_ms=a.last_build_unix_ms,
        bytes=a.bytes, entries=a.entries, builds=a.builds, action_hits=a.action_hits, hit_rate=a.hit_rate,
        builds_failed=a.builds_failed,
    ) for a in stats.app_stats)
    response.tenant_stats.extend(admin_pb2.TenantStats(
        tenant=t.tenant, bytes=t.bytes, entries=t.entries, apps=t.apps, builds=t.builds, action_hits=t.action_hits,
        hit_rate=t.hit_rate, last_build_unix_ms=t.last_build_unix_ms, shadow_builds=t.shadow_builds,
        shadow_bytes=t.shadow_bytes, shadow_entries=t.shadow_entries,
    ) for t in stats.tenant_stats)
    if stats.remote is not None:
        r = stats.remote
        response.remote.CopyFrom(admin_pb2.RemoteTierStats(
            bucket=r.bucket, prefix=r.prefix, writer=r.writer, queue_depth=r.queue_depth, queued_bytes=r.queued_bytes,
            circuit_open=r.circuit_open, bytes_in=r.bytes_in, bytes_out=r.bytes_out, counters=r.counters,
        ))
    return response
