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
from cached.operate.purge import PurgeSelector
from cached.operate.stats import fill_stats
from cached.store import Store
from cached.v1 import admin_pb2, admin_pb2_grpc


class AdminService(admin_pb2_grpc.AdminServicer):
    def __init__(self, store: Store, pipeline: BuildPipeline, steps: StepRunner, root: Path, operations: Operations) -> None:
        self.store = store
        self.pipeline = pipeline
        self.steps = steps
        self.root = root
        self.ops = operations

    async def Stats(self, request: admin_pb2.StatsRequest, context: grpc.aio.ServicerContext) -> admin_pb2.StatsResponse:
        return await asyncio.to_thread(self._stats)

    def _stats(self) -> admin_pb2.StatsResponse:
        stats = self.store.stats()
        response = admin_pb2.StatsResponse(
            blobs=stats.blobs, bytes=stats.bytes, actions=stats.roots.get(self.store.actions.kind, 0), apps=stats.apps,
            digest_function=self.store.hasher.function, root=str(self.root),
            processes_started=self.steps.processes_started, builds=self.pipeline.counters.builds,
            action_hits=self.pipeline.counters.action_hits, max_bytes=self.ops.config.max_bytes,
            metrics_address=self.ops.metrics.address,
        )
        fill_stats(response, self.store, self.ops.metrics)  # entries by kind, per tenant and app
        return response

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
