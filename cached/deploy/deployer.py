"""The Deployer: deploys an action's outputs to a target and keeps each app's versions for rollback.

It takes an output manifest (the ActionRecord's Tree) and a blob reader, and
nothing else of the store: the version history goes through a small key-value
interface, and a rollback that must rebuild a local bundle asks an injected
lookup for the action. Deploying is separate from the action key: the same
action can be deployed as a preview, then promoted to production, without a
rebuild. One deploy at a time per (tenant, app, target); deploys of different
apps run concurrently (the Cloudflare rate limiter is shared by all of them).
Never logs vars' values, secrets or tokens.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cached.deploy.assets import ASSET_LIMIT, MAX_ASSET_FILES, AssetHasher, BlobSource, Manifest
from cached.deploy.cloudflare import CloudflareApi, RetryPolicy
from cached.deploy.errors import DeployError, DeployInvalid, DeployNotFound, DeployUnavailable
from cached.deploy.limiter import RateLimiter, RateLimiters
from cached.deploy.local import LOCAL_BUCKET, LocalBundles
from cached.deploy.names import script_name
from cached.deploy.publish import CloudflarePublisher
from cached.deploy.r2 import R2Settings, R2Uploader
from cached.deploy.worker import WorkerInfo, bindings, r2_key, version_metadata, worker_module, wrangler_config
from cached.v1 import cached_pb2, deploy_pb2, records_pb2

log = logging.getLogger("cached.deploy")

CLOUDFLARE = "cloudflare"
LOCAL = "local"
TARGETS = (CLOUDFLARE, LOCAL)
PREVIEW = cached_pb2.PREVIEW
PRODUCTION = cached_pb2.PRODUCTION
BINDING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
RESERVED = {"ASSETS", "LARGE_FILES"}
MAX_BINDINGS = 64
MAX_BINDING_BYTES = 5 * 1024
HISTORY_LIMIT = 100


@dataclass(frozen=True)
class CloudflareSettings:
    account_id: str
    token: str
    base_url: str  # the operator's default is cached.deploy.config.DEFAULT_BASE_URL
    retry: RetryPolicy = RetryPolicy()
    parallel_buckets: int = 3

    def __repr__(self) -> str:  # never shows the token
        return f"CloudflareSettings(account_id={self.account_id!r}, base_url={self.base_url!r})"


@dataclass(frozen=True)
class DeploySettings:
    local_dir: Path
    cloudflare: CloudflareSettings | None = None
    r2: R2Settings | None = None
    asset_limit: int = ASSET_LIMIT
    max_asset_files: int = MAX_ASSET_FILES
    keep_local_versions: int = 10


class HistoryStore(Protocol):
    """Where the per-app version lists live (the daemon's index). Blocking calls."""

    def get(self, key: bytes) -> bytes | None: ...
    def put(self, key: bytes, value: bytes) -> None: ...


ActionLookup = Callable[[str, str], "records_pb2.ActionRecord | None"]  # (tenant, action key) -> record


@dataclass
class MemoryHistory:
    """A HistoryStore in memory (tests, or a daemon that need not remember across restarts)."""

    data: dict[bytes, bytes] = field(default_factory=dict)

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.data[key] = value


@dataclass(frozen=True)
class Options:
    """DeployOptions, checked."""

    target: str
    environment: int
    vars: dict[str, str]
    secrets: dict[str, str]

    @property
    def production(self) -> bool:
        return self.environment == PRODUCTION


def check_options(options: cached_pb2.DeployOptions) -> Options:
    """Raises DeployInvalid naming the field; the target default is cloudflare, the environment's preview."""
    target = options.target or CLOUDFLARE
    if target not in TARGETS:
        raise DeployInvalid(f"deploy.target: {target!r}; choose {' or '.join(TARGETS)}")
    environment = options.environment or PREVIEW
    if environment not in (PREVIEW, PRODUCTION):
        raise DeployInvalid(f"deploy.environment: {environment} is not PREVIEW or PRODUCTION")
    vars_, secrets = dict(options.vars), dict(options.secrets)
    for what, values in (("vars", vars_), ("secrets", secrets)):
        if len(values) > MAX_BINDINGS:
            raise DeployInvalid(f"deploy.{what}: {len(values)} entries; at most {MAX_BINDINGS}")
        for name, value in values.items():
            if not BINDING_NAME.match(name) or name in RESERVED:
                raise DeployInvalid(f"deploy.{what}: {name!r} is not a usable binding name (a JS identifier, not {', '.join(sorted(RESERVED))})")
            if len(value.encode()) > MAX_BINDING_BYTES:
                raise DeployInvalid(f"deploy.{what}[{name!r}]: over {MAX_BINDING_BYTES} bytes")
    both = sorted(set(vars_) & set(secrets))
    if both:
        raise DeployInvalid(f"deploy: {both[0]!r} is both a var and a secret")
    return Options(target, environment, vars_, secrets)


def history_key(tenant: str, app: str, target: str) -> bytes:
    return f"{tenant}/{app}/{target}".encode()


class Deployer:
    def __init__(
        self, settings: DeploySettings, blobs: BlobSource, history: HistoryStore, actions: ActionLookup,
        limiters: RateLimiters | None = None,
    ) -> None:
        """``limiters``: the daemon's API rate limiters (its composition root owns them); a set of its own when not given."""
        self.settings = settings
        self.limiters = limiters if limiters is not None else RateLimiters()
        self.blobs = blobs
        self.history_store = history
        self.actions = actions
        self.hasher = AssetHasher(blobs, limit=settings.asset_limit, max_files=settings.max_asset_files)
        self.local = LocalBundles(settings.local_dir, blobs, keep=settings.keep_local_versions)
        self._locks: dict[bytes, asyncio.Lock] = {}
        self._api: CloudflareApi | None = None
        self._publisher: CloudflarePublisher | None = None
        self._r2: R2Uploader | None = None
        self.limiter: RateLimiter | None = None

    async def close(self) -> None:
        if self._api is not None:
            await self._api.close()

    # -- the two operations ------------------------------------------------------------
    async def deploy(
        self, record: records_pb2.ActionRecord, *, tenant: str, app: str, action_key: str, options: cached_pb2.DeployOptions,
    ) -> cached_pb2.DeployResult:
        opts = check_options(options)
        name = script_name(tenant, app)
        key = history_key(tenant, app, opts.target)
        started = time.perf_counter()
        async with self._lock(key):
            history = await self._load(key)
            sequence = max((v.sequence for v in history.versions), default=0) + 1
            manifest = await asyncio.to_thread(self.hasher.manifest, record.outputs)
            r2_prefix = name
            info = WorkerInfo(
                tenant=tenant, app=app, script_name=name, version=sequence, action_key=action_key,
                build_time=_iso(record.created_unix_ms), vars=opts.vars, large=tuple(manifest.large), r2_prefix=r2_prefix,
                headers=manifest.rules.get("_headers", ""),
            )
            module = worker_module(info)
            result = cached_pb2.DeployResult(
                target=opts.target, environment=opts.environment, script_name=name, action_key=action_key,
                sequence=sequence, assets_total=len(manifest.assets), large_files=len(manifest.large),
            )
            if opts.target == CLOUDFLARE:
                await self._deploy_cloudflare(name, manifest, module, info, opts, result)
            else:
                await self._deploy_local(name, manifest, module, info, opts, result)
            entry = deploy_pb2.DeployedVersion(
                sequence=sequence, target=opts.target, environment=opts.environment, version_id=result.version_id,
                action_key=action_key, deployed_unix_ms=int(time.time() * 1000), urls=result.urls, script_name=name,
                vars=opts.vars, live=opts.production,
            )
            await self._append(key, history, entry)
        log.info("deployed", extra={
            "tenant": tenant, "app": app, "target": opts.target, "environment": _env_name(opts.environment),
            "script": name, "sequence": sequence, "version_id": result.version_id, "action_key": action_key,
            "assets": result.assets_total, "assets_uploaded": result.assets_uploaded, "large_files": result.large_files,
            "large_files_uploaded": result.large_files_uploaded, "ms": round((time.perf_counter() - started) * 1000, 1),
        })
        return result

    async def rollback(self, *, tenant: str, app: str, target: str = "", to_sequence: int = 0, force: bool = False) -> cached_pb2.DeployResult:
        """Makes an earlier version live again: a deployment of it on Cloudflare, ``current`` moved locally."""
        target = target or CLOUDFLARE
        if target not in TARGETS:
            raise DeployInvalid(f"target: {target!r}; choose {' or '.join(TARGETS)}")
        name = script_name(tenant, app)
        key = history_key(tenant, app, target)
        async with self._lock(key):
            history = await self._load(key)
            chosen = _rollback_target(history, to_sequence, tenant, app, target)
            message = f"cached rollback of {tenant}/{app} to version {chosen.sequence} (action {chosen.action_key[:16]})"
            if target == CLOUDFLARE:
                urls = await self._cloudflare().rollback(name, chosen.version_id, force=force, message=message)
            else:
                urls = [(await self._restore_local(name, chosen, tenant, app)).as_uri()]
            for v in history.versions:
                v.live = v.sequence == chosen.sequence
            await self._save(key, history)
        log.info("rolled back", extra={"tenant": tenant, "app": app, "target": target, "script": name, "sequence": chosen.sequence, "version_id": chosen.version_id})
        result = cached_pb2.DeployResult(
            target=target, environment=PRODUCTION, version_id=chosen.version_id, urls=urls, script_name=name,
            action_key=chosen.action_key, sequence=chosen.sequence, rolled_back=True,
        )
        if target == LOCAL:
            result.bundle_dir = str(self.local.version_dir(name, chosen.sequence))
        return result

    async def versions(self, tenant: str, app: str, target: str) -> list[deploy_pb2.DeployedVersion]:
        return list((await self._load(history_key(tenant, app, target or CLOUDFLARE))).versions)

    # -- targets --------------------------------------------------------------------------
    async def _deploy_cloudflare(
        self, name: str, manifest: Manifest, module: str, info: WorkerInfo, opts: Options, result: cached_pb2.DeployResult,
    ) -> None:
        publisher = self._cloudflare()
        if manifest.large:
            uploader = self._r2_uploader()
            sent = 0
            for f in manifest.large:
                sent += await asyncio.to_thread(uploader.ensure, r2_key(info.r2_prefix, f), self.blobs, f)
            result.large_files_uploaded = sent
        bucket = self.settings.r2.bucket if (self.settings.r2 and manifest.large) else ""
        binds = bindings(opts.vars, opts.secrets, bucket)
        message = f"cached {info.tenant}/{info.app} version {info.version} (action {info.action_key[:16]})"

        def metadata_for(jwt: str | None) -> dict[str, object]:
            # A tag per upload attempt: a retried upload finds its version by it (and a second upload of one
            # deploy, after a keep_assets upload came out of order, never finds the first one's).
            tag = f"cached-{info.version}-{uuid.uuid4().hex[:16]}"
            return version_metadata(assets_jwt=jwt, bindings=binds, message=message, tag=tag, rules=manifest.rules)

        published = await publisher.publish(name, manifest, module, metadata_for, production=opts.production, message=message)
        result.version_id = published.version_id
        result.urls.extend(published.urls)
        result.assets_uploaded = published.assets_uploaded

    async def _deploy_local(
        self, name: str, manifest: Manifest, module: str, info: WorkerInfo, opts: Options, result: cached_pb2.DeployResult,
    ) -> None:
        bundle = await asyncio.to_thread(self._write_local, name, manifest, module, info, opts.secrets)
        if opts.production:
            await asyncio.to_thread(self.local.activate, name, info.version)
        result.version_id = f"local-{info.version}"
        result.bundle_dir = str(bundle)
        result.urls.append(bundle.as_uri())
        result.assets_uploaded = len(manifest.assets)
        result.large_files_uploaded = len(manifest.large)

    def _write_local(self, name: str, manifest: Manifest, module: str, info: WorkerInfo, secrets: dict[str, str]) -> Path:
        config = wrangler_config(info, assets_dir="assets", r2_bucket=LOCAL_BUCKET if manifest.large else "")
        keys = {f.path: r2_key(info.r2_prefix, f) for f in manifest.large}
        return self.local.write(name, info.version, manifest, module, config, keys, secrets)

    async def _restore_local(self, name: str, chosen: deploy_pb2.DeployedVersion, tenant: str, app: str) -> Path:
        """Moves ``current`` back; rebuilds the bundle from the action when it was pruned (without secrets)."""
        if not self.local.version_dir(name, chosen.sequence).is_dir():
            record = await asyncio.to_thread(self.actions, tenant, chosen.action_key)
            if record is None:
                raise DeployNotFound(f"version {chosen.sequence}'s bundle was pruned and action {chosen.action_key} is no longer in the store")
            manifest = await asyncio.to_thread(self.hasher.manifest, record.outputs)
            info = WorkerInfo(
                tenant=tenant, app=app, script_name=name, version=chosen.sequence,
                action_key=chosen.action_key, build_time=_iso(record.created_unix_ms), vars=dict(chosen.vars),
                large=tuple(manifest.large), r2_prefix=name, headers=manifest.rules.get("_headers", ""),
            )
            await asyncio.to_thread(self._write_local, name, manifest, worker_module(info), info, {})
        return await asyncio.to_thread(self.local.activate, name, chosen.sequence)

    def _cloudflare(self) -> CloudflarePublisher:
        cf = self.settings.cloudflare
        if cf is None or not cf.account_id or not cf.token:
            raise DeployUnavailable("the cloudflare target is not configured on this daemon: set the account id and the API token (serve --cloudflare-account-id, --cloudflare-token-file)")
        if self._publisher is None:
            self.limiter = self.limiters.for_token(cf.token)
            self._api = CloudflareApi(base_url=cf.base_url, account_id=cf.account_id, token=cf.token, limiter=self.limiter, retry=cf.retry)
            self._publisher = CloudflarePublisher(self._api, self.blobs, parallel_buckets=cf.parallel_buckets)
        return self._publisher

    def _r2_uploader(self) -> R2Uploader:
        if self.settings.r2 is None:
            raise DeployUnavailable(f"the outputs hold files over the {self.settings.asset_limit >> 20} MiB asset limit, which are served from R2, and R2 is not configured on this daemon (serve --r2-endpoint, --r2-bucket, credentials)")
        if self._r2 is None:
            self._r2 = R2Uploader(self.settings.r2)
        return self._r2

    # -- history --------------------------------------------------------------------------
    def _lock(self, key: bytes) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def _load(self, key: bytes) -> deploy_pb2.DeployHistory:
        raw = await asyncio.to_thread(self.history_store.get, key)
        return deploy_pb2.DeployHistory.FromString(raw) if raw else deploy_pb2.DeployHistory()

    async def _save(self, key: bytes, history: deploy_pb2.DeployHistory) -> None:
        await asyncio.to_thread(self.history_store.put, key, history.SerializeToString())

    async def _append(self, key: bytes, history: deploy_pb2.DeployHistory, entry: deploy_pb2.DeployedVersion) -> None:
        if entry.live:
            for v in history.versions:
                v.live = False
        history.versions.append(entry)
        if len(history.versions) > HISTORY_LIMIT:
            keep = [v for v in history.versions[-HISTORY_LIMIT:]]
            if not any(v.live for v in keep):
                keep = [v for v in history.versions if v.live] + keep[1:]
            del history.versions[:]
            history.versions.extend(keep)
        await self._save(key, history)
        if entry.target == LOCAL:
            newest = {v.sequence for v in history.versions[-self.settings.keep_local_versions:]}
            await asyncio.to_thread(self.local.prune, entry.script_name, newest | {v.sequence for v in history.versions if v.live})


def _rollback_target(history: deploy_pb2.DeployHistory, to_sequence: int, tenant: str, app: str, target: str) -> deploy_pb2.DeployedVersion:
    versions = list(history.versions)
    if not versions:
        raise DeployNotFound(f"{tenant}/{app} has no {target} deploys to roll back to")
    if to_sequence:
        for v in versions:
            if v.sequence == to_sequence:
                return v
        raise DeployNotFound(f"{tenant}/{app} has no {target} version {to_sequence}")
    live = next((i for i, v in enumerate(versions) if v.live), None)
    if live is None:
        raise DeployNotFound(f"{tenant}/{app} has no live {target} version: nothing to roll back from")
    for v in reversed(versions[:live]):
        if v.environment == PRODUCTION and v.action_key != versions[live].action_key:
            return v
    raise DeployNotFound(f"{tenant}/{app} has no production version on {target} before the live one (version {versions[live].sequence})")


def _iso(unix_ms: int) -> str:
    if not unix_ms:
        return ""
    return datetime.datetime.fromtimestamp(unix_ms / 1000, datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _env_name(environment: int) -> str:
    return "production" if environment == PRODUCTION else "preview"
