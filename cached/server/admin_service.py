"""Admin: operators' calls. Reads the store and the pipeline's counters; changes nothing yet."""

from __future__ import annotations

from pathlib import Path

import grpc

from cached.build.pipeline import BuildPipeline
from cached.build.steps import StepRunner
from cached.store import Store
from cached.v1 import admin_pb2, admin_pb2_grpc, records_pb2


class AdminService(admin_pb2_grpc.AdminServicer):
    def __init__(self, store: Store, pipeline: BuildPipeline, steps: StepRunner, root: Path) -> None:
        self.store = store
        self.pipeline = pipeline
        self.steps = steps
        self.root = root

    async def Stats(self, request: admin_pb2.StatsRequest, context: grpc.aio.ServicerContext) -> admin_pb2.StatsResponse:
        stats = self.store.stats()
        apps = []
        for key, value in self.store.index.items("apps"):
            tenant, _, app = key.decode().partition("/")
            record = records_pb2.AppRecord.FromString(value)
            apps.append(admin_pb2.AppStats(tenant=tenant, app=app, last_action_key=record.last_action_key, last_build_unix_ms=record.last_build_unix_ms))
        return admin_pb2.StatsResponse(
            blobs=stats.blobs, bytes=stats.bytes, actions=stats.roots.get("actions", 0), apps=len(apps), app_stats=apps,
            digest_function=self.store.hasher.function, root=str(self.root),
            processes_started=self.steps.processes_started, builds=self.pipeline.counters.builds,
            action_hits=self.pipeline.counters.action_hits,
        )
