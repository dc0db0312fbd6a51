"""Deployer.Deploy / Deployer.Rollback, and the deploy that follows a build. Decides nothing itself.

It finds the action for the request (scoped to the tenant, as every lookup
is), calls the Deployer, and turns deploy errors into status codes. After a
build that asked to deploy, ``after_build`` runs the deploy and reports it as a
``DeployResult`` event: a failed deploy sets its ``error``, logs a line, and
never fails or uncaches the build (the build succeeded; its result is recorded).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import grpc

from cached.errors import InvalidRequest
from cached.execution.events import EventStream, Phase
from cached.request.spec import check_id
from cached.server.auth import authorize_tenant
from cached.deploy.deployer import Deployer, check_options
from cached.deploy.errors import DeployConflict, DeployError, DeployInvalid, DeployNotFound, DeployUnavailable
from cached.store import Store
from cached.v1 import cached_pb2, deploy_pb2, deploy_pb2_grpc, records_pb2

log = logging.getLogger("cached.server.deploy")


class IndexHistory:
    """The Deployer's version lists, in the store's ``deployments`` records."""

    def __init__(self, store: Store) -> None:
        self.deployments = store.deployments

    def get(self, key: bytes) -> bytes | None:
        return self.deployments.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.deployments.put(key, value)


def action_lookup(store: Store) -> Callable[[str, str], records_pb2.ActionRecord | None]:
    """(tenant, action key) -> the action's record; a hit leases its outputs, so a deploy never finds them gone."""
    def lookup(tenant: str, action_key: str) -> records_pb2.ActionRecord | None:
        entry = store.actions.get(store.actions.key(tenant, action_key))
        return records_pb2.ActionRecord.FromString(entry.value) if entry is not None else None
    return lookup


def status_for_deploy(error: DeployError) -> grpc.StatusCode:
    if isinstance(error, DeployInvalid):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(error, DeployNotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(error, (DeployUnavailable, DeployConflict)):
        return grpc.StatusCode.FAILED_PRECONDITION
    if error.status in (401, 403) or error.code == 10000:
        return grpc.StatusCode.PERMISSION_DENIED
    if error.status == 429 or error.status >= 500 or error.status == 0:
        return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.FAILED_PRECONDITION


class DeployService(deploy_pb2_grpc.DeployerServicer):
    def __init__(self, deployer: Deployer, store: Store, last_action: Callable[[str, str], str | None]) -> None:
        self.deployer = deployer
        self.actions = action_lookup(store)
        self.last_action = last_action  # (tenant, app) -> the app's last action key

    async def Deploy(self, request: deploy_pb2.DeployRequest, context: grpc.aio.ServicerContext) -> deploy_pb2.DeployResponse:
        await authorize_tenant(context, request.tenant)
        try:
            tenant, app = check_id("tenant", request.tenant), check_id("app", request.app)
        except InvalidRequest as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        action_key = request.action_key or self.last_action(tenant, app) or ""
        record = await asyncio.to_thread(self.actions, tenant, action_key) if action_key else None
        if record is None:
            what = f"action {action_key}" if request.action_key else f"a build of {tenant}/{app}"
            await context.abort(grpc.StatusCode.NOT_FOUND, f"{what} is not in the store for tenant {tenant}: build it first")
        try:
            result = await self.deployer.deploy(record, tenant=tenant, app=app, action_key=action_key, options=request.options)
            versions = await self.deployer.versions(tenant, app, result.target)
        except DeployError as e:
            await context.abort(status_for_deploy(e), str(e))
        return deploy_pb2.DeployResponse(result=result, versions=versions)

    async def Rollback(self, request: deploy_pb2.RollbackRequest, context: grpc.aio.ServicerContext) -> deploy_pb2.DeployResponse:
        await authorize_tenant(context, request.tenant)
        try:
            tenant, app = check_id("tenant", request.tenant), check_id("app", request.app)
        except InvalidRequest as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        try:
            result = await self.deployer.rollback(
                tenant=tenant, app=app, target=request.target, to_sequence=request.to_sequence, force=request.force,
            )
            versions = await self.deployer.versions(tenant, app, result.target)
        except DeployError as e:
            await context.abort(status_for_deploy(e), str(e))
        return deploy_pb2.DeployResponse(result=result, versions=versions)


class BuildDeploys:
    """The deploy a Build request asked for: checked before the build, run after its result."""

    def __init__(self, deployer: Deployer, store: Store) -> None:
        self.deployer = deployer
        self.actions = action_lookup(store)

    def check(self, options: cached_pb2.DeployOptions) -> None:
        """Bad deploy options fail the request before anything is built (INVALID_ARGUMENT)."""
        try:
            check_options(options)
        except DeployInvalid as e:
            raise InvalidRequest("deploy", str(e)) from None

    async def after_build(
        self, tenant: str, app: str, result: cached_pb2.BuildResult, options: cached_pb2.DeployOptions, events: EventStream,
    ) -> None:
        """Emits one DeployResult event; never raises (but for cancellation)."""
        with Phase(events, "deploy", 1.0, 1.0):
            try:
                record = await asyncio.to_thread(self.actions, tenant, result.action_key)
                if record is None:
                    raise DeployNotFound(f"action {result.action_key} vanished from the store before its deploy")
                deployed = await self.deployer.deploy(record, tenant=tenant, app=app, action_key=result.action_key, options=options)
            except Exception as e:  # noqa: BLE001 - a deploy failure is reported, never a build failure
                message = str(e) if isinstance(e, DeployError) else f"internal error: {type(e).__name__}: {e}"
                if not isinstance(e, DeployError):
                    log.exception("deploy failed unexpectedly", extra={"tenant": tenant, "app": app})
                else:
                    log.warning("deploy failed", extra={"tenant": tenant, "app": app, "target": options.target or "cloudflare", "error": message})
                events.log("stderr", f"[cached] deploy failed: {message} (the build succeeded and is cached)", "deploy")
                deployed = cached_pb2.DeployResult(
                    target=options.target or "cloudflare", environment=options.environment or cached_pb2.PREVIEW,
                    action_key=result.action_key, error=message,
                )
        events.emit(cached_pb2.BuildEvent(deploy_result=deployed))
