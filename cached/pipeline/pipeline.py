"""The build pipeline: look up the action, or build it in the sandbox and record it.

The hit path (``hit.py``) hashes the request, reads the index in one
transaction and answers: it reads no file, starts no process and waits for no
write. The miss path runs under single flight (one build per action key), one
build per app workspace at a time, and records nothing unless the build
succeeded and its outputs are in the store.

This module must never import from ``cached.operate``: operations hear of
builds through the observer (``observer.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cached.deps.layer import Dependencies, DependencyLayer, install_commands
from cached.execution.environment import NpmSettings, base_env, child_env, fingerprint
from cached.errors import BuildError, PreconditionFailed
from cached.execution.events import EventStream, FlightEvents, Phase
from cached.pipeline.hit import AppLedger, ByDigest, HitPath, Keys, refuse_unowned
from cached.pipeline.observer import BuildObserver, NullObserver
from cached.pipeline.result import build_result
from cached.deps.resolution import ResolutionLayer
from cached.deps.shared import SharedDependencies
from cached.packages.fetch import SharedPackages, TarballFetcher
from cached.pipeline.shared import SharedActions
from cached.remote import RemoteTier
from cached.packages.installer import PackageInstaller
from cached.packages.layout import Platform
from cached.deps.vitecache import ViteCache
from cached.keys import ActionInputs, deps_inputs, deps_key, sources_tree, tree_digest
from cached.pipeline.outputs import check_outputs
from cached.reasons import explain_miss
from cached.request.npmrc import app_registry
from cached.request.spec import BuildSpec, SourceFile
from cached.execution.scripts import script_env, script_steps
from cached.execution.singleflight import Flight, SingleFlight
from cached.execution.steps import BuildLog, StepRunner
from cached.execution.toolchain import Toolchain
from cached.warm import WarmLayer, WarmPool, WarmSettings
from cached.execution.workspace import Workspace
from cached.execution.workspaces import Workspaces
from cached.digest import Digest
from cached.failpoints import failpoint
from cached.sandbox import Overlay
from cached.store import Store, keep_leased
from cached.v1 import cached_pb2, records_pb2

log = logging.getLogger("cached.pipeline")

HIT = cached_pb2.CacheDecision.HIT
MISS = cached_pb2.CacheDecision.MISS
COALESCED = cached_pb2.CacheDecision.COALESCED
DEPS_MEMO_SIZE = 256
OUT_DIR_PROBE = (
    "const [mode] = process.argv.slice(1);"
    "const vite = await import('vite');"
    "const c = await vite.resolveConfig({mode, logLevel: 'silent'}, 'build', mode);"
    "console.log('CACHED_OUT_DIR=' + c.build.outDir);"
)


@dataclass(frozen=True)
class PipelineSettings:
    root: Path
    npm: NpmSettings
    sandbox_uid: int = 65534
    sandbox_gid: int = 65534
    deps_import: str = "auto"          # overlay, hardlink, copy or symlink (see deps.py)
    overlay_available: bool = True
    allow_install_scripts: tuple[str, ...] = ()
    resolution_ttl_s: float = 24 * 3600.0
    vite_cache: bool = True
    package_store: bool = True         # lay registry lockfiles out from stored packages (else npm ci for each new one)


@dataclass
class Counters:
    builds: int = 0
    action_hits: int = 0


@dataclass
class _Built:
    record: records_pb2.ActionRecord
    bytes_ingested: int
    deps: Dependencies | None = None


@dataclass
class _AppLocks:
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def get(self, owner: str) -> asyncio.Lock:
        return self.locks.setdefault(owner, asyncio.Lock())


class BuildPipeline:
    def __init__(self, store: Store, steps: StepRunner, toolchain: Toolchain, settings: PipelineSettings, observer: BuildObserver | None = None) -> None:
        self.store = store
        self.observer: BuildObserver = observer or NullObserver()
        self.tombstones = store.tombstones  # what eviction, purge or repair removed: read on a miss only
        self.apps = AppLedger(store, self.observer)
        self.hits = HitPath(store, self.apps)
        self.steps = steps
        self.toolchain = toolchain
        self.settings = settings
        self.hasher = store.hasher
        self.counters = Counters()
        self._base_env = base_env(toolchain, settings.npm)
        self._sandbox_id = fingerprint(self._base_env, steps.view.fingerprint if getattr(steps, "view", None) else "")
        self._toolchain_id = toolchain.fingerprint  # a property that hashes: once, not per lookup
        self._flights: SingleFlight[_Built, Callable[[EventStream], None]] = SingleFlight()
        self._app_locks = _AppLocks()
        self._deps_memo: OrderedDict[tuple[str, ...], str] = OrderedDict()
        self._keys_memo: dict[int, tuple[weakref.ref[BuildSpec], str, Digest, str]] = {}
        self._env_salt = hashlib.sha256(b"cached-env:" + str(settings.root).encode()).digest()
        npm_cache = Path(settings.npm.cache_dir)
        packages = None
        if settings.package_store and settings.npm.registry:
            packages = PackageInstaller(store, TarballFetcher(settings.npm.registry, npm_cache, cafile=settings.npm.cafile))
        self.deps = DependencyLayer(
            store, steps, settings.root, npm_cache=npm_cache, method=settings.deps_import,
            overlay_ok=settings.overlay_available, allow_scripts=settings.allow_install_scripts, registry=settings.npm.registry,
            packages=packages, platform=Platform.of(toolchain.os, toolchain.arch, toolchain.libc, toolchain.node, toolchain.npm),
        )
        self.resolution = ResolutionLayer(store, steps, toolchain, settings.root, npm_cache=npm_cache, ttl_s=settings.resolution_ttl_s)
        self.vite_cache = ViteCache(store) if settings.vite_cache else None
        self.warm: WarmLayer | None = None  # enable_warm() turns warm builders on
        self.shared: SharedActions | None = None  # enable_shared() adds the shared tier
        self.workspaces = Workspaces(settings.root)  # the daemon sets a capped one (--build-write-size)

    def enable_shared(self, tier: RemoteTier) -> SharedActions:
        """Action results through the shared tier (``shared.py``); the packages' fetch shares too."""
        self.shared = SharedActions(self.store, tier)
        self.deps.shared = self.resolution.shared = SharedDependencies(self.store, tier)
        if self.deps.packages is not None:
            self.deps.packages.fetcher.shared = SharedPackages(tier)
        return self.shared

    def enable_warm(self, settings: WarmSettings) -> WarmLayer:
        """Warm builders (cached/warm): a live Vite process per recently built app."""
        self.warm = WarmLayer(
            WarmPool(settings), self.steps, self.settings.root, self.toolchain.node_path,
            self.toolchain.fingerprint + self._sandbox_id, self.store.blobs.open, cold_build=self._shadow_build,
            scratch_parent=lambda workspace: self.workspaces.scratch_parent(workspace),
        )
        return self.warm

    # ------------------------------------------------------------------ keys

    def compute_keys(self, spec: BuildSpec) -> Keys:
        # The intake hands an app's repeated request the same spec object: its
        # keys (a quarter of a millisecond of hashing) are kept for it while it
        # lives, found by identity (a weak reference: the memo keeps no spec,
        # and an id reused by another object is never taken for it).
        kept = self._keys_memo.get(id(spec))
        if kept is not None and kept[0]() is spec:
            _, key, sources, dkey = kept
        else:
            sources = tree_digest(self.hasher, sources_tree(spec))
            dkey = self._deps_key(spec)
            action = ActionInputs(sources, dkey, spec.script, spec.mode, spec.env, self._toolchain_id, self._sandbox_id)
            key = action.key(self.hasher)
            ident = id(spec)
            memo = self._keys_memo
            memo[ident] = (weakref.ref(spec, lambda _ref: memo.pop(ident, None)), key, sources, dkey)

        def app_record() -> records_pb2.AppRecord:  # a miss, or a hit on another action than the app's last
            return records_pb2.AppRecord(
                last_action_key=key,
                sources={f.path: str(f.digest) for f in spec.files},
                env={k: self._env_hash(spec, v) for k, v in spec.env.items()},
                deps_key=dkey, toolchain=self._toolchain_id, script=spec.script, mode=spec.mode,
            )

        return Keys(key, sources, dkey, app_record)

    def _deps_key(self, spec: BuildSpec) -> str:
        # Parsing a lockfile costs milliseconds; its digest is already known, so
        # the key is memoised by the digests of the files it is made of.
        memo_key = tuple(str(f.digest) for f in spec.files if f.path in ("package.json", "package-lock.json", ".npmrc") or f.path.startswith("patches/"))
        found = self._deps_memo.get(memo_key)
        if found is None:
            found = deps_key(self.hasher, deps_inputs(spec, self.toolchain, [" ".join(c) for c in self.deps.commands]))
            self._deps_memo[memo_key] = found
            if len(self._deps_memo) > DEPS_MEMO_SIZE:
                self._deps_memo.popitem(last=False)
        else:
            self._deps_memo.move_to_end(memo_key)
        return found

    def _env_hash(self, spec: BuildSpec, value: str) -> str:
        return hashlib.blake2b(value.encode(), key=self._env_salt, digest_size=16, person=spec.tenant.encode()[:16]).hexdigest()

    # ---------------------------------------------------------------- lookup

    def _action_root_key(self, spec: BuildSpec, action_key: str) -> bytes:
        # Results are scoped to the tenant: another tenant's identical sources rebuild
        # (and share blobs), so a lookup is never an oracle for someone else's code.
        return self.store.actions.key(spec.tenant, action_key)

    def app_record(self, tenant: str, app: str) -> records_pb2.AppRecord | None:
        """The app's last build (one queued for the writer included)."""
        return self.apps.get(tenant, app)

    # ----------------------------------------------------------------- build

    async def build(self, spec: BuildSpec, events: EventStream, by_digest: ByDigest = ()) -> cached_pb2.BuildResult:
        """Builds (or finds) the action; the observer hears of every build once, failed ones included.

        ``by_digest``: files sent by digest whose ownership the intake left to the lookup's transaction.
        """
        try:
            result = await self._build(spec, events, by_digest)
        except BaseException as e:
            self.observer.build_ended(spec, events, None, e)
            raise
        self.observer.build_ended(spec, events, result, None)
        return result

    async def _build(self, spec: BuildSpec, events: EventStream, by_digest: ByDigest = ()) -> cached_pb2.BuildResult:
        started = time.perf_counter()
        self.counters.builds += 1
        resolved = b""
        if "package-lock.json" not in spec.by_path:
            if by_digest:  # npm sees nothing of a request before its files are the tenant's
                owned = self.store.blobs.owned_by(spec.tenant, [d for _, d in by_digest])
                refuse_unowned(spec, by_digest, [d for _, d in by_digest if d not in owned])
                by_digest = ()
            deadline = time.monotonic() + spec.timeout_s
            resolved = await self.resolution.resolve(spec, events, deadline, child_env(self._base_env, spec.env, install=True, registry=app_registry(spec)))
            spec = with_lockfile(spec, resolved, self.hasher)
        with Phase(events, "lookup", 0.0, 0.05):
            keys = self.compute_keys(spec)
            found = self.hits.lookup(spec, None if spec.force else keys.action_key, by_digest)  # one read transaction
        previous = found.previous
        if found.hit:
            self.counters.action_hits += 1
            record = self.hits.answer(spec, keys, found, events)
            return build_result(events, keys, record, started, "hit", "", bytes_ingested=0, lockfile=resolved)

        # A miss: only now is it worth working out why.
        if found.purged:
            reason, detail = "purged", "this app's cache was purged"
        elif spec.force:
            reason, detail = "forced", "the request asked for a fresh build (force)"
        else:
            miss = explain_miss(previous, keys.app_record)
            reason, detail = miss.reason, miss.detail
            removed = self.tombstones.reason(self.store.actions.kind, self._action_root_key(spec, keys.action_key))
            if removed is not None:  # these very inputs were built; eviction, purge or repair removed the result
                reason, detail = removed
        if self.shared is not None and not spec.force and not found.purged:
            shared = await self.shared.fetch(spec, keys.action_key, self._action_root_key(spec, keys.action_key))
            if shared is not None:
                self.counters.action_hits += 1
                record = self.hits.answer(spec, keys, found, events, shared)
                self.store.lease(trees=[Digest.from_proto(record.output_tree)])
                return build_result(events, keys, record, started, "hit", "", bytes_ingested=0, lockfile=resolved)
        events.decision("action", MISS, reason, detail, "local")
        flight_key = (spec.tenant, keys.action_key)
        build_spec = spec
        built, coalesced = await self._flights.run(
            flight_key, lambda flight: self._build_miss(build_spec, keys, previous, flight), listener=lambda apply: apply(events)
        )
        if coalesced:
            events.decision("action", COALESCED, "coalesced", "an identical build was already running; its result is shared")
        self.store.lease(trees=[Digest.from_proto(built.record.output_tree)])  # as a hit does: the caller reads them next
        await asyncio.wrap_future(self.apps.record(spec, keys, previous, events.decisions))
        return build_result(events, keys, built.record, started, "miss", reason, bytes_ingested=built.bytes_ingested, lockfile=resolved, deps=built.deps)

    # ------------------------------------------------------------------ miss

    def workspace_path(self, spec: BuildSpec) -> Path:
        return self.workspaces.path(spec.tenant, spec.app)

    async def _open_workspace(self, spec: BuildSpec) -> Path:
        """Under the app's lock: its workspace (mounted when capped), then least recently used ones dropped."""
        path = self.workspaces.ensure(spec.tenant, spec.app)  # on the loop: one mount call at most, and the LRU is the loop's
        if self.workspaces.capped:
            await self.workspaces.trim(spec.owner, busy=lambda owner: self._app_locks.get(owner).locked(), retire=self._retire_warm)
        return path

    async def _retire_warm(self, owner: str) -> None:
        if self.warm is not None:
            await self.warm.pool.retire(owner, "workspace_dropped")

    async def _build_miss(self, spec: BuildSpec, keys: Keys, previous: records_pb2.AppRecord | None, flight: Flight[Any, Any], warm: bool = True) -> _Built:
        events = FlightEvents(flight)
        deadline = time.monotonic() + spec.timeout_s
        install_env = child_env(self._base_env, spec.env, install=True, registry=app_registry(spec))  # the .npmrc's registry= wins
        build_env = child_env(self._base_env, spec.env, install=False)
        with Phase(events, "dependencies", 0.05, 0.65):  # type: ignore[arg-type]
            deps = await self.deps.ensure(spec, keys.deps_key, previous.deps_key if previous else "", events, deadline, install_env)
        keep_leased(self.store, trees=[deps.tree])  # whatever purge or collection do while this build runs
        async with self._app_locks.get(spec.owner):
            await self._open_workspace(spec)
            if self.warm is not None and warm:
                warm_built = await self._build_warm(spec, keys, deps, events, deadline, build_env)
                if warm_built is not None:
                    return warm_built
            workspace = Workspace(self.workspace_path(spec), self.store.blobs.open)
            with Phase(events, "workspace", 0.65, 0.7):  # type: ignore[arg-type]
                report = await asyncio.to_thread(workspace.reconcile, spec.files)
                await asyncio.to_thread(self.deps.place, deps, workspace.path)
            log.info("workspace reconciled", extra={"owner": spec.owner, "written": len(report.written), "removed": len(report.removed), "unchanged": report.unchanged, "deps_method": deps.method})
            events.log("stderr", f"[cached] node_modules: {deps.method} of {deps.files} files ({deps.bytes / 1e6:.1f} MB), in place in {deps.ms:.1f} ms", "cached")
            build_log = BuildLog()
            with self.workspaces.overlay_scratch(workspace.path, "build") as scratch:
                overlay = None
                if deps.method == "overlay":
                    upper, work = scratch / "upper", scratch / "work"
                    upper.mkdir()
                    work.mkdir()
                    overlay = Overlay(lower=deps.path, upper=upper, work=work, target=workspace.path / "node_modules")
                    await self._restore_vite_cache(spec, keys, upper, events)
                with Phase(events, "build", 0.7, 0.9):  # type: ignore[arg-type]
                    package_json = self._content(spec, "package.json").decode()
                    mode_args = ["--mode", spec.mode] if spec.mode != "production" else []
                    for step in script_steps(package_json, spec.script, mode_args):
                        await self.steps.run(
                            ["sh", "-c", step.command], source="build", workspace=workspace.path,
                            env=script_env(build_env, workspace.path, package_json, step, self.toolchain.node_path),
                            network=False, deadline=deadline, emit=events.log, build_log=build_log,
                            what=f"the {step.event} script ({step.command})", overlay=overlay,
                        )
                    out_dir = await self._resolve_out_dir(spec, workspace.path, deadline, build_env, overlay)
                out_path = (workspace.path / out_dir).resolve()
                if not out_path.is_relative_to(workspace.path.resolve()) or out_path == workspace.path.resolve():
                    raise PreconditionFailed(f"build.outDir {out_dir!r} is outside the app; it must be a directory inside the app")
                record, size = await self._store_outputs(spec, keys, out_path, out_dir, build_log, events)
                if overlay is not None and self.vite_cache is not None:
                    await self._save_vite_cache(spec, keys, overlay.upper, scratch / "vitecache")
            return _Built(record, size, deps)

    async def _store_outputs(self, spec: BuildSpec, keys: Keys, out_path: Path, out_dir: str, build_log: BuildLog, events: Any) -> tuple[records_pb2.ActionRecord, int]:
        """Ingests the outputs (moved out of ``out_path``) and records the action; the same for cold and warm builds."""
        with Phase(events, "ingest", 0.9, 0.97):
            files, size = await asyncio.to_thread(check_outputs, out_path, out_dir)
            tree_digest_, tree = await asyncio.to_thread(self._ingest, out_path)
            log_digest = await asyncio.to_thread(self.store.blobs.put_bytes, build_log.text())
        with Phase(events, "record", 0.97, 1.0):
            record = records_pb2.ActionRecord(
                outputs=tree, output_tree=tree_digest_.to_proto(), log=log_digest.to_proto(), deps_key=keys.deps_key,
                created_unix_ms=int(time.time() * 1000), tenant=spec.tenant, app=spec.app,
            )
            failpoint("build.before_record")
            self.store.blobs.note_owner(spec.tenant, [tree_digest_, log_digest, *(Digest.from_proto(f.digest) for f in tree.files)])
            await asyncio.wrap_future(self.store.actions.put(
                self._action_root_key(spec, keys.action_key), record.SerializeToString(),
                blobs=(log_digest,), trees=(tree_digest_,), owner=spec.owner,
            ))
            failpoint("build.after_record")
        if self.shared is not None and not spec.app.startswith("."):  # a dot: the daemon's own (shadow) app
            self.shared.publish(spec, keys.action_key, record)
        return record, size

    async def _build_warm(self, spec: BuildSpec, keys: Keys, deps: Dependencies, events: Any, deadline: float, build_env: dict[str, str]) -> _Built | None:
        """The warm layer (called under the app's lock): a result recorded as usual, or None to build cold."""
        assert self.warm is not None
        package_json = self._content(spec, "package.json").decode(errors="replace") if "package.json" in spec.by_path else ""
        warm = await self.warm.build(spec, keys.deps_key, deps.method, deps.path, self.workspace_path(spec), events, deadline, build_env, package_json)
        if warm is None:
            return None
        try:
            record, size = await self._store_outputs(spec, keys, warm.out_path, warm.out_dir, warm.build_log, events)
        finally:
            warm.cleanup()
        await self.warm.recorded(spec, warm, record)
        return _Built(record, size, deps)

    async def _shadow_build(self, spec: BuildSpec) -> records_pb2.ActionRecord:
        """A cold build nobody waits for (the warm layer's shadow check); it records its result, so cold wins."""
        built = await self._build_miss(spec, self.compute_keys(spec), None, _Unheard(), warm=False)  # type: ignore[arg-type]
        return built.record

    async def _restore_vite_cache(self, spec: BuildSpec, keys: Keys, upper: Path, events: Any) -> None:
        if self.vite_cache is None:
            return
        restored, reason, files = await asyncio.to_thread(self.vite_cache.restore, spec.tenant, spec.app, keys.deps_key, upper)
        if restored:
            events.decision("vite", HIT, "hit", f"{files} files of .vite/.vite-temp/.tmp from the app's last build")
        else:
            detail = {"none": "no earlier build of this app left a cache", "deps_changed": "dependencies changed: the old cache was dropped", "evicted": "the saved cache is no longer in the store"}[reason]
            events.decision("vite", MISS, "new_app" if reason == "none" else reason, detail)

    async def _save_vite_cache(self, spec: BuildSpec, keys: Keys, upper: Path, staging: Path) -> None:
        assert self.vite_cache is not None
        try:
            await asyncio.to_thread(self.vite_cache.save, spec.tenant, spec.app, keys.deps_key, upper, staging)
        except Exception:  # noqa: BLE001 - the cache is an optimisation; the build stands
            log.warning("could not save the Vite cache", exc_info=True, extra={"owner": spec.owner})

    def _ingest(self, out_path: Path) -> tuple[Digest, Any]:
        with self.store.ingesting():
            digest, tree = self.store.trees.ingest(out_path, move=True)
        shutil.rmtree(out_path, ignore_errors=True)
        return digest, tree

    async def _resolve_out_dir(self, spec: BuildSpec, workspace: Path, deadline: float, env: dict[str, str], overlay: Overlay | None) -> str:
        """Vite's build.outDir: 'dist' unless the config says otherwise, then asked of Vite itself."""
        configs = [f for f in spec.by_path if f.startswith("vite.config.")]
        contents = await asyncio.to_thread(lambda: [self._content(spec, c) for c in configs])  # a config sent by digest is a file read
        if not any(b"outDir" in content for content in contents):
            return "dist"
        lines: list[str] = []
        await self.steps.run(
            ["node", "--input-type=module", "-e", OUT_DIR_PROBE, spec.mode], source="build", workspace=workspace,
            env=env, network=False, deadline=deadline, overlay=overlay,
            emit=lambda stream, line, source: lines.append(line), build_log=BuildLog(), what="resolving build.outDir",
        )
        for line in lines:
            if line.startswith("CACHED_OUT_DIR="):
                value = line.split("=", 1)[1]
                return os.path.relpath(value, workspace) if os.path.isabs(value) else value
        raise PreconditionFailed("could not resolve Vite's build.outDir from the app's config")

    def _content(self, spec: BuildSpec, path: str) -> bytes:
        f = spec.by_path[path]
        if f.content is not None:
            return f.content
        with self.store.blobs.open(f.digest) as handle:
            return handle.read()


class _Unheard:
    """A flight without listeners: the shadow build's events go nowhere."""

    def publish(self, apply: Callable[[Any], None]) -> None:
        pass


def with_lockfile(spec: BuildSpec, lockfile: bytes, hasher: Any) -> BuildSpec:
    """The spec as if the caller had sent the resolved lockfile: its keys then match a later request that does."""
    lock = SourceFile("package-lock.json", hasher.bytes(lockfile), False, lockfile)
    files = tuple(sorted((*spec.files, lock), key=lambda f: f.path))
    return replace(spec, files=files, by_path={f.path: f for f in files})


__all__ = ["BuildPipeline", "PipelineSettings", "BuildError"]
