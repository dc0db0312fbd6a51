"""Raw gRPC calls for the deploy tests: Build with deploy options, Deployer.Deploy and Rollback."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc

from cached.v1 import cached_pb2, cached_pb2_grpc, deploy_pb2, deploy_pb2_grpc


@dataclass
class Built:
    result: cached_pb2.BuildResult
    deploy: cached_pb2.DeployResult | None
    events: list[cached_pb2.BuildEvent] = field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        return [e.WhichOneof("event") for e in self.events]

    def logs(self, source: str = "") -> list[str]:
        return [e.log.line for e in self.events if e.HasField("log") and (not source or e.log.source == source)]


def options(target: str = "cloudflare", production: bool = False, vars: dict[str, str] | None = None, secrets: dict[str, str] | None = None) -> cached_pb2.DeployOptions:
    return cached_pb2.DeployOptions(
        target=target, environment=cached_pb2.PRODUCTION if production else cached_pb2.PREVIEW, vars=vars or {}, secrets=secrets or {},
    )


def build(address: str, files: dict[str, bytes], *, tenant: str, app: str, env: dict[str, str] | None = None,
          deploy: cached_pb2.DeployOptions | None = None) -> Built:
    request = cached_pb2.BuildRequest(
        tenant=tenant, app=app, env=env or {}, files=[cached_pb2.File(path=p, content=c) for p, c in sorted(files.items())],
    )
    if deploy is not None:
        request.deploy.CopyFrom(deploy)
    with grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]) as ch:
        events = list(cached_pb2_grpc.BuilderStub(ch).Build(request, timeout=300))
    result = next(e.result for e in events if e.HasField("result"))
    deployed = next((e.deploy_result for e in events if e.HasField("deploy_result")), None)
    return Built(result, deployed, events)


def deploy(address: str, *, tenant: str, app: str, action_key: str = "", opts: cached_pb2.DeployOptions | None = None) -> deploy_pb2.DeployResponse:
    with grpc.insecure_channel(address) as ch:
        return deploy_pb2_grpc.DeployerStub(ch).Deploy(
            deploy_pb2.DeployRequest(tenant=tenant, app=app, action_key=action_key, options=opts or options()), timeout=300,
        )


def rollback(address: str, *, tenant: str, app: str, target: str = "cloudflare", to: int = 0, force: bool = False) -> deploy_pb2.DeployResponse:
    with grpc.insecure_channel(address) as ch:
        return deploy_pb2_grpc.DeployerStub(ch).Rollback(
            deploy_pb2.RollbackRequest(tenant=tenant, app=app, target=target, to_sequence=to, force=force), timeout=300,
        )


def outputs(address: str, tenant: str, result: cached_pb2.BuildResult) -> dict[str, bytes]:
    """The built files' bytes, read back through ContentStore.ReadBlob."""
    out = {}
    with grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)]) as ch:
        stub = cached_pb2_grpc.ContentStoreStub(ch)
        for f in result.outputs:
            chunks = stub.ReadBlob(cached_pb2.ReadBlobRequest(tenant=tenant, digest=f.digest), timeout=120)
            out[f.path] = b"".join(c.data for c in chunks)
    return out
