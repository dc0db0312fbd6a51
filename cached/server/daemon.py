"""The composition root: builds every object of the daemon once and wires them.

Nothing else in the package creates a store, a sandbox or a server; tests
build a Daemon with their own DaemonConfig. The store is opened (and its
LMDB environment with it) only after everything that might fork has run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field, replace
from typing import Any
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cached.content import ContentStore
from cached.deps.layer import install_commands
from cached.execution.environment import NpmSettings
from cached.pipeline.deploys import Deploys, action_lookup
from cached.pipeline.intake import Intake
from cached.pipeline.pipeline import BuildPipeline, PipelineSettings
from cached.request.npmrc import accepted_registries
from cached.request.spec import Limits
from cached.execution.scratch import clear_scratch
from cached.execution.workspaces import Workspaces
from cached.execution.steps import StepRunner
from cached.execution.toolchain import probe_toolchain
from cached.deploy.config import DeployConfig
from cached.deploy.deployer import Deployer
from cached.deploy.limiter import RateLimiters
from cached.warm import WarmSettings
from cached.operate.config import OperateConfig
from cached.operate.operations import Operations
from cached.sandbox import RunLimits, Sandbox, root_id
from cached.sandbox.egress import EgressPolicy
from cached.sandbox.view import View, minimal_view
from cached.server.admin_service import AdminService
from cached.server.auth import AuthInterceptor, Tokens, check_listen, load_token_file
from cached.server.builder_service import BuilderService
from cached.server.content_service import ContentService
from cached.server.deploy_service import DeployService
from cached.store import Store
from cached.v1 import admin_pb2, admin_pb2_grpc, cached_pb2, cached_pb2_grpc, deploy_pb2, deploy_pb2_grpc

log = logging.getLogger("cached.server")

MAX_MESSAGE_BYTES = 64 << 20  # a request holds files up to 1 MiB inline each; bigger ones are uploaded


@dataclass
class DaemonConfig:
    root: Path
    listen: str = "127.0.0.1:7878"
    digest_function: str = "blake3"
    sandbox: str = "auto"
    npm_cache: Path | None = None
    max_children: int = field(default_factory=lambda: os.cpu_count() or 2)
    drain_seconds: float = 30.0
    limits: Limits = field(default_factory=Limits)
    sandbox_uid: int = 65534
    sandbox_gid: int = 65534
    tokens: Tokens = field(default_factory=Tokens)  # bearer tokens; required beyond loopback
    token_file: Path | None = None  # lines 'build:TENANT:TOKEN' / 'build:*:TOKEN' / 'admin:TOKEN', added to tokens
    deps_import: str = "auto"
    allow_install_scripts: tuple[str, ...] = ()
    resolution_ttl_s: float = 24 * 3600.0
    vite_cache: bool = True
    package_store: bool = True
    deploy: DeployConfig = field(default_factory=DeployConfig)  # Cloudflare, R2 and local-bundle settings
    warm: WarmSettings = field(default_factory=WarmSettings)  # warm builders; max_builders=0 turns them off
    operate: OperateConfig = field(default_factory=OperateConfig)  # metrics endpoint, disk cap, leases
    run_limits: RunLimits = field(default_factory=RunLimits)  # each install, build and warm builder (its own cgroup)
    registry: str = ""  # where packages come from, the one origin installs reach; default: npm's `registry` setting
    allow_registries: tuple[str, ...] = ()  # more registries an app's .npmrc may name (`--allow-registry`); installs reach them too
    workspaces_kept: int = 256  # app workspaces kept mounted (RAM) under a write cap; the least recently used beyond go
    remote: Any = None  # RemoteSettings of the shared tier (cached/remote), or None: this machine alone


def npm_settings(cache_dir: Path, registry: str = "") -> NpmSettings:
    """The registry (unless given) and CA come from the npm configuration of the daemon's user, read once."""
    def get(key: str) -> str:
        try:
            out = subprocess.run(["npm", "config", "get", key], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        value = out.stdout.strip()
        return "" if value in ("null", "undefined") else value
    return NpmSettings(
        cache_dir=str(cache_dir), registry=registry or get("registry"), cafile=get("cafile"),
        extra_ca_certs=os.environ.get("NODE_EXTRA_CA_CERTS", ""),
    )


def service_names() -> list[str]:
    return [d.full_name for module in (cached_pb2, admin_pb2, deploy_pb2) for d in module.DESCRIPTOR.services_by_name.values()]


class Daemon:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        if config.token_file is not None:
            file_tokens = load_token_file(config.token_file)
            config.tokens = Tokens(config.tokens.build + file_tokens.build, config.tokens.admin + file_tokens.admin)
        check_listen(config.listen, config.tokens)  # before anything is opened or locked
        root = config.root.resolve()
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        if config.digest_function != "blake3" and not config.limits.only_tenant:
            raise ValueError(
                f"digest {config.digest_function} is not collision-resistant: with several tenants, one could craft a file "
                "that collides with another's. Use it only for a store that serves one trust domain (--single-tenant NAME), or use blake3"
            )
        deploy_settings = config.deploy.settings(root)  # reads the API token and R2 keys: fails before anything is opened
        # Probe children (npm, node, unshare) before LMDB is opened: never fork after opening.
        self.toolchain = probe_toolchain()
        npm_cache = (config.npm_cache or root / "npm-cache").resolve()
        npm_cache.mkdir(parents=True, exist_ok=True)
        shutil.chown(npm_cache, config.sandbox_uid, config.sandbox_gid) if os.geteuid() == 0 else None
        self.npm = npm_settings(npm_cache, config.registry)
        if not self.npm.registry:
            raise ValueError("npm has no registry setting to read (`npm config get registry`): set `cached serve --registry URL`")
        # installs reach these origins alone, through the sandbox's egress proxy; an app's .npmrc names no other
        limits = replace(config.limits, registries=accepted_registries(self.npm.registry, config.allow_registries))
        self.egress = EgressPolicy.for_registries(self.npm.registry, config.allow_registries)
        self.sandbox = Sandbox(config.sandbox)
        self.store = Store.open(
            root, digest_function=config.digest_function,
            lease_seconds=config.operate.lease_seconds, grace_seconds=config.operate.grace_seconds,
        )
        try:
            self.sandbox.enforce_limits(root_id(root))  # with the root's lock held: kills what an earlier daemon left
        except BaseException:
            self.store.close()
            raise
        overlay_ok = self.sandbox.capabilities is not None and self.sandbox.capabilities.overlay
        run_limits = self._write_cap(config.run_limits, overlay_ok)
        self.workspaces = Workspaces(root, run_limits.write_bytes, config.workspaces_kept)
        try:
            self.workspaces.startup()  # what an earlier daemon left mounted goes, before scratch/ is cleared
        except BaseException:
            self.store.close()
            raise
        clear_scratch(root)
        hide = [root] + ([] if npm_cache.is_relative_to(root) else [npm_cache])
        self.steps = StepRunner(self.sandbox, asyncio.Semaphore(config.max_children), hide, config.sandbox_uid, config.sandbox_gid, run_limits, egress=self.egress,
                                view=self._view() if self.sandbox.mode != "off" else None)
        self.operations = Operations(self.store, config.operate, self.toolchain, install_commands(config.allow_install_scripts))
        self.pipeline = BuildPipeline(self.store, self.steps, self.toolchain, PipelineSettings(
            root=root, npm=self.npm, sandbox_uid=config.sandbox_uid, sandbox_gid=config.sandbox_gid,
            deps_import=config.deps_import, overlay_available=overlay_ok, allow_install_scripts=config.allow_install_scripts,
            resolution_ttl_s=config.resolution_ttl_s, vite_cache=config.vite_cache, package_store=config.package_store,
        ), observer=self.operations)
        self.pipeline.workspaces = self.workspaces
        self.rate_limiters = RateLimiters()  # Cloudflare's per-token limit, shared by every deploy of this daemon
        actions = action_lookup(self.store.actions)
        self.deployer = Deployer(deploy_settings, self.store.blobs, self.store.deployments, actions, limiters=self.rate_limiters)
        last_action = lambda tenant, app: getattr(self.pipeline.app_record(tenant, app), "last_action_key", None)  # noqa: E731
        self.deploys = Deploys(self.deployer, actions, last_action)
        self.content = ContentStore(self.store)
        self.builder = BuilderService(self.pipeline, Intake(self.store, limits), self.deploys)
        if config.warm.enabled:
            self.pipeline.enable_warm(config.warm)
        self.remote = self._shared_tier(config.remote)
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self.health = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()

    def _shared_tier(self, settings: Any) -> Any:
        """The bucket several daemons share (``cached/remote``), with its metrics; None without ``--remote``."""
        if settings is None:
            return None
        if self.store.hasher.function != "blake3":
            raise ValueError("the shared tier holds BLAKE3 blobs only: a store of another digest cannot use --remote")
        from cached.operate.remote_metrics import RemoteMetrics
        from cached.remote import RemoteTier

        observer = RemoteMetrics(self.operations.metrics)
        tier = RemoteTier(settings, observer=observer)
        observer.watch_queue(lambda: tier.queue_depth)
        self.pipeline.enable_shared(tier)
        self.operations.remote = tier
        log.info("shared tier", extra={"settings": repr(settings), "writer": tier.writable})
        return tier

    def _write_cap(self, limits: RunLimits, overlay_ok: bool) -> RunLimits:
        """The limits with the write cap the daemon can enforce: a tmpfs per workspace needs a root
        daemon, the sandbox and overlays (node_modules is not copied onto it); else none, said once."""
        if not limits.write_bytes:
            return limits
        why = ""
        if os.geteuid() != 0:
            why = "the daemon is not root"
        elif self.sandbox.mode == "off":
            why = "the sandbox is off"
        elif not overlay_ok or self.config.deps_import not in ("auto", "overlay"):
            why = "node_modules does not reach builds by an overlay"
        if not why:
            return limits
        log.warning("build write limit (--build-write-size) is not enforced: %s; workspaces are plain directories", why)
        return replace(limits, write_bytes=0)

    def _view(self) -> View:
        """What every child sees of the host (cached/sandbox/view.py): the toolchain, the system, a
        minimal /etc and /dev, its own workspace, overlay and binds; never this daemon's code, root,
        log, config or credentials."""
        config = self.config
        return minimal_view(
            node_path=self.toolchain.node_path, npm_path=self.toolchain.npm_path, uid=config.sandbox_uid, gid=config.sandbox_gid,
            files=(self.npm.cafile, self.npm.extra_ca_certs),
            private=[str(p) for p in (config.token_file, config.deploy.token_file, config.deploy.r2_credentials_file) if p],
        )

    async def start(self) -> int:
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        server = grpc.aio.server(options=options, interceptors=[AuthInterceptor(self.config.tokens)])  # always: it tells servicers who calls
        cached_pb2_grpc.add_BuilderServicer_to_server(self.builder, server)
        cached_pb2_grpc.add_ContentStoreServicer_to_server(ContentService(self.content, self.config.limits), server)
        admin_pb2_grpc.add_AdminServicer_to_server(AdminService(self.pipeline, self.steps, self.root, self.operations), server)
        deploy_pb2_grpc.add_DeployerServicer_to_server(DeployService(self.deploys), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        names = service_names()
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
        self.port = server.add_insecure_port(self.config.listen)
        if self.port == 0:
            raise RuntimeError(f"cannot listen on {self.config.listen}: the address is in use or invalid")
        await server.start()
        self.server = server
        await self.operations.start()
        for name in ["", *names]:
            await _maybe_await(self.health.set(name, health_pb2.HealthCheckResponse.SERVING))
        log.info("serving", extra={"listen": self.config.listen, "port": self.port, "root": str(self.root), "toolchain": self.toolchain.describe(), "digest": self.store.hasher.function})
        return self.port

    async def stop(self) -> None:
        """Refuses new builds, lets running ones finish (bounded), then closes the store."""
        self.builder.accepting = False
        if self.server is not None:
            for name in ["", *service_names()]:
                await _maybe_await(self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING))
            await self.server.stop(self.config.drain_seconds)
            self.server = None
        await self.operations.stop()
        if self.pipeline.warm is not None:
            await self.pipeline.warm.stop()  # builds are drained: kill the builders, cancel shadow checks
        self.workspaces.close()  # no build or builder is left: the workspace mounts go
        self.sandbox.release_limits()  # no child is left: the root's parent cgroups go
        await self.deployer.close()
        if self.remote is not None:
            if self.pipeline.shared is not None:
                self.pipeline.shared.close()
            if self.pipeline.deps.shared is not None:
                self.pipeline.deps.shared.close()
            await asyncio.to_thread(self.remote.close)  # flushes what it can in its bound, drops the rest
        self.store.close()
        log.info("stopped", extra={"root": str(self.root)})

    async def serve_until_signal(self, port_file: Path | None = None) -> None:
        port = await self.start()
        if port_file is not None:
            tmp = port_file.with_name(port_file.name + ".tmp")
            tmp.write_text(str(port))
            tmp.replace(port_file)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("draining", extra={"seconds": self.config.drain_seconds})
        await self.stop()


async def _maybe_await(value: object) -> None:
    if asyncio.iscoroutine(value):
        await value
