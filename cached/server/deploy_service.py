"""Deployer.Deploy / Deployer.Rollback. Decides nothing itself.

It authorises the tenant first, checks the request's ids, calls
``cached.pipeline.deploys.Deploys`` (which finds the action, scoped to the
tenant, and runs the Deployer), and turns domain and deploy errors into status
codes through ``status_for``. It never touches storage.
"""

from __future__ import annotations

import grpc

from cached.deploy.errors import DeployError
from cached.errors import BuildError
from cached.pipeline.deploys import Deploys
from cached.request.spec import check_id
from cached.server.auth import authorize_tenant
from cached.server.status import status_for
from cached.v1 import deploy_pb2, deploy_pb2_grpc


class DeployService(deploy_pb2_grpc.DeployerServicer):
    def __init__(self, deploys: Deploys) -> None:
        self.deploys = deploys

    async def Deploy(self, request: deploy_pb2.DeployRequest, context: grpc.aio.ServicerContext) -> deploy_pb2.DeployResponse:
        await authorize_tenant(context, request.tenant)
        try:
            tenant, app = check_id("tenant", request.tenant), check_id("app", request.app)
            result, versions = await self.deploys.deploy(tenant, app, request.action_key, request.options)
        except (BuildError, DeployError) as e:
            await context.abort(*status_for(e))
        return deploy_pb2.DeployResponse(result=result, versions=versions)

    async def Rollback(self, request: deploy_pb2.RollbackRequest, context: grpc.aio.ServicerContext) -> deploy_pb2.DeployResponse:
        await authorize_tenant(context, request.tenant)
        try:
            tenant, app = check_id("tenant", request.tenant), check_id("app", request.app)
            result, versions = await self.deploys.rollback(
                tenant, app, target=request.target, to_sequence=request.to_sequence, force=request.force,
            )
        except (BuildError, DeployError) as e:
            await context.abort(*status_for(e))
        return deploy_pb2.DeployResponse(result=result, versions=versions)
