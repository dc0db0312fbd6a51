"""Builder.Build: validate, run the pipeline, stream its events. Decides nothing itself."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from cached.errors import BuildError, ShuttingDown
from cached.execution.events import EventStream, Phase
from cached.pipeline.deploys import Deploys
from cached.pipeline.intake import Intake
from cached.pipeline.pipeline import BuildPipeline
from cached.server.auth import authorize_tenant
from cached.server.status import status_for
from cached.v1 import cached_pb2, cached_pb2_grpc

log = logging.getLogger("cached.server.builder")


class BuilderService(cached_pb2_grpc.BuilderServicer):
    def __init__(self, pipeline: BuildPipeline, intake: Intake, deploys: Deploys | None = None) -> None:
        self.pipeline = pipeline
        self.intake = intake  # request to spec; files by digest and key files, off the event loop
        self.deploys = deploys  # runs the deploy a request asks for, after its result
        self.accepting = True

    async def Build(self, request: cached_pb2.BuildRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[cached_pb2.BuildEvent]:
        await authorize_tenant(context, request.tenant)
        events = EventStream()
        try:
            if not self.accepting:
                raise ShuttingDown("the daemon is shutting down; retry on another instance or after it restarts")
            with Phase(events, "validate", 0.0, 0.0):
                spec, by_digest = await self.intake.parse(request)
                if spec.deploy is not None and self.deploys is not None:
                    self.deploys.check(spec.deploy)
        except BuildError as e:
            code, message = status_for(e)
            await context.abort(code, message)
        task = asyncio.create_task(self._run(spec, events, by_digest))
        try:
            async for event in events:
                yield event
            await task
        except asyncio.CancelledError:
            task.cancel()
            raise
        except Exception as e:  # noqa: BLE001 - every failure becomes a status
            code, message = status_for(e)
            if code == grpc.StatusCode.INTERNAL:
                log.exception("build failed unexpectedly", extra={"tenant": spec.tenant, "app": spec.app})
            await context.abort(code, message)

    async def _run(self, spec, events: EventStream, by_digest=()) -> None:  # type: ignore[no-untyped-def]
        try:
            result = await self.pipeline.build(spec, events, by_digest)
            events.emit(cached_pb2.BuildEvent(result=result))
            if spec.deploy is not None and self.deploys is not None:
                # After the Metrics and Result events; a failed deploy is an event, never a failed build.
                await self.deploys.after_build(spec.tenant, spec.app, result, spec.deploy, events)
        finally:
            events.close()
