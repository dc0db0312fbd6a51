"""Deploys of built actions: the one a Deploy call asks for, and the one that follows a build.

The Deployer takes an action's record and a blob reader and knows nothing of
the store; this module finds the record for it (scoped to the tenant, as every
lookup is) through the store's ``actions`` records, and its version history is
the store's ``deployments`` records, handed over by the composition root.

After a build that asked to deploy, ``after_build`` runs the deploy and reports
it as a ``DeployResult`` event: a failed deploy sets its ``error``, logs a
line, and never fails or uncaches the build (the build succeeded; its result
is recorded). This module must never fail a build for its deploy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from cached.deploy.deployer import ActionLookup, Deployer, check_options
from cached.deploy.errors import DeployError, DeployInvalid, DeployNotFound
from cached.errors import InvalidRequest, NotFound
from cached.execution.events import EventStream, Phase
from cached.store.records import ActionRoots
from cached.v1 import cached_pb2, deploy_pb2, records_pb2

log = logging.getLogger("cached.pipeline.deploys")

LastAction = Callable[[str, str], "str | None"]  # (tenant, app) -> the app's last action key


def action_lookup(actions: ActionRoots) -> ActionLookup:
    """(tenant, action key) -> the action's record (blocking); a hit leases its outputs, so a deploy never finds them gone."""
    def lookup(tenant: str, action_key: str) -> records_pb2.ActionRecord | None:
        entry = actions.get(actions.key(tenant, action_key))
        return records_pb2.ActionRecord.FromString(entry.value) if entry is not None else None
    return lookup


class Deploys:
    """Finds the action a deploy names and calls the Deployer with it."""

    def __init__(self, deployer: Deployer, actions: ActionLookup, last_action: LastAction) -> None:
        self.deployer = deployer
        self.actions = actions
        self.last_action = last_action

    async def deploy(
        self, tenant: str, app: str, action_key: str, options: cached_pb2.DeployOptions,
    ) -> tuple[cached_pb2.DeployResult, list[deploy_pb2.DeployedVersion]]:
        """Deploys ``action_key`` (the app's last build when empty); the result and the target's versions.

        Raises NotFound when the tenant has no such action (or no build of the
        app), DeployError when the deploy fails."""
        key = action_key or self.last_action(tenant, app) or ""
        record = await asyncio.to_thread(self.actions, tenant, key) if key else None
        if record is None:
            what = f"action {action_key}" if action_key else f"a build of {tenant}/{app}"
            raise NotFound(f"{what} is not in the store for tenant {tenant}: build it first")
        result = await self.deployer.deploy(record, tenant=tenant, app=app, action_key=key, options=options)
        return result, await self.deployer.versions(tenant, app, result.target)

    async def rollback(
        self, tenant: str, app: str, *, target: str, to_sequence: int, force: bool,
    ) -> tuple[cached_pb2.DeployResult, list[deploy_pb2.DeployedVersion]]:
        """Makes an earlier version live again; the result and the target's versions. Raises DeployError."""
        result = await self.deployer.rollback(tenant=tenant, app=app, target=target, to_sequence=to_sequence, force=force)
        return result, await self.deployer.versions(tenant, app, result.target)

    # -- the deploy a Build request asked for ------------------------------------------------
    def check(self, options: cached_pb2.DeployOptions) -> None:
        """Bad deploy options fail the request before anything is built (InvalidRequest)."""
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
