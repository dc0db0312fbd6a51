"""The build pipeline: look up the action, or build it in the sandbox and record it.

The hit path hashes the request, reads the index and answers: it reads no
file, starts no process and writes nothing. The miss path runs under single
flight (one build per action key), one build per app workspace at a time, and
records nothing unless the build succeeded and its outputs are in the store.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cached.build.environment import NpmSettings, base_env, child_env, fingerprint
from cached.build.errors import BuildError, PreconditionFailed
from cached.build.events import EventStream, Phase
from cached.build.keys import ActionInputs, deps_inputs, deps_key, sources_tree, tree_digest
from cached.build.outputs import check_outputs
from cached.build.reasons import explain_miss
from cached.build.request import BuildSpec
from cached.build.singleflight import Flight, SingleFlight
from cached.build.steps import BuildLog, StepRunner
from cached.build.toolchain import Toolchain
from cached.build.workspace import Workspace
from cached.digest import Digest
from cached.failpoints import failpoint
from cached.store import RootEntry, Store
from cached.v1 import cached_pb2, records_pb2

log = logging.getLogger("cached.build")

HIT = cached_pb2.CacheDecision.HIT
MISS = cached_pb2.CacheDecision.MISS
COALESCED = cached_pb2.CacheDecision.COALESCED
INSTALL_COMMAND = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"]
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


@dataclass
class Counters:
    builds: int = 0
    action_hits: int = 0


@dataclass
class Keys:
    action_key: str
    sources: Digest
    deps_key: str
    app_record: records_pb2.AppRecord  # what this build is made of, to record and compare


@dataclass
class _Emitter:
    """Sends a step's events to every waiter of a flight, each into its own stream."""

    flight: Flight[Any, Callable[[EventStream], None]]

    def log(self, stream: str, line: str, source: str) -> None:
        self.flight.publish(lambda s: s.log(stream, line, source))

    def phase_started(self, name: str, progress: float) -> None:
        self.flight.publish(lambda s: s.phase_started(name, progress))

    def phase_finished(self, name: str, progress: float) -> float:
        self.flight.publish(lambda s: s.phase_finished(name, progress))
        return 0.0

    def decision(self, layer: str, result: int, reason: str = "", detail: str = "", tier: str = "local") -> None:
        self.flight.publish(lambda s: s.decision(layer, result, reason, detail, tier))


@dataclass
class _Built:
    record: records_pb2.ActionRecord
    bytes_ingested: int
    lockfile: bytes = b""


@dataclass
class _AppLocks:
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def get(self, owner: str) -> asyncio.Lock:
        return self.locks.setdefault(owner, asyncio.Lock())


class BuildPipeline:
    def __init__(self, store: Store, steps: StepRunner, toolchain: Toolchain, settings: PipelineSettings) -> None:
        self.store = store
        self.steps = steps
        self.toolchain = toolchain
        self.settings = settings
        self.hasher = store.hasher
        self.counters = Counters()
        self._base_env = base_env(toolchain, settings.npm)
        self._sandbox_id = fingerprint(self._base_env)
        self._flights: SingleFlight[_Built, Callable[[EventStream], None]] = SingleFlight()
        self._app_locks = _AppLocks()
        self._deps_memo: OrderedDict[tuple[str, ...], str] = OrderedDict()
        self._env_salt = hashlib.sha256(b"cached-env:" + str(settings.root).encode()).digest()

    # ------------------------------------------------------------------ keys

    def compute_keys(self, spec: BuildSpec) -> Keys:
        sources = tree_digest(self.hasher, sources_tree(spec))
        dkey = self._deps_key(spec)
        action = ActionInputs(sources, dkey, spec.script, spec.mode, spec.env, self.toolchain.fingerprint, self._sandbox_id)
        key = action.key(self.hasher)
        record = records_pb2.AppRecord(
            last_action_key=key,
            sources={f.path: str(f.digest) for f in spec.files},
            env={k: self._env_hash(spec, v) for k, v in spec.env.items()},
            deps_key=dkey, toolchain=self.toolchain.fingerprint, script=spec.script, mode=spec.mode,
        )
        return Keys(key, sources, dkey, record)

    def _deps_key(self, spec: BuildSpec) -> str:
        # Parsing a lockfile costs milliseconds; its digest is already known, so
        # the key is memoised by the digests of the files it is made of.
        memo_key = tuple(str(f.digest) for f in spec.files if f.path in ("package.json", "package-lock.json", ".npmrc") or f.path.startswith("patches/"))
        found = self._deps_memo.get(memo_key)
        if found is None:
            found = deps_key(self.hasher, deps_inputs(spec, self.toolchain, INSTALL_COMMAND))
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
        return f"{spec.tenant}/{action_key}".encode()

    def app_record(self, tenant: str, app: str) -> records_pb2.AppRecord | None:
        raw = self.store.index.get("apps", f"{tenant}/{app}".encode())
        return records_pb2.AppRecord.FromString(raw) if raw is not None else None

    # ----------------------------------------------------------------- build

    async def build(self, spec: BuildSpec, events: EventStream) -> cached_pb2.BuildResult:
        started = time.perf_counter()
        self.counters.builds += 1
        with Phase(events, "lookup", 0.0, 0.05):
            keys = self.compute_keys(spec)
            previous = self.app_record(spec.tenant, spec.app)
            root = None if spec.force else self.store.get_root("actions", self._action_root_key(spec, keys.action_key))
        if root is not None and previous is not None and root.created_ns < previous.purge_watermark_ns:
            reason, detail = "purged", "this app's cache was purged"
            root = None
        elif spec.force:
            reason, detail = "forced", "the request asked for a fresh build (force)"
        else:
            miss = explain_miss(previous, keys.app_record)
            reason, detail = miss.reason, miss.detail

        if root is not None:
            self.counters.action_hits += 1
            record = records_pb2.ActionRecord.FromString(root.value)
            self.store.lease(trees=[Digest.from_proto(record.output_tree)])
            events.decision("action", HIT, "hit", "identical inputs were built before", "local")
            if previous is None or previous.last_action_key != keys.action_key:
                await self._record_app(spec, keys, previous)
            return self._result(events, keys, record, started, "hit", "", bytes_ingested=0)

        events.decision("action", MISS, reason, detail, "local")
        flight_key = (spec.tenant, keys.action_key)
        built, coalesced = await self._flights.run(
            flight_key, lambda flight: self._build_miss(spec, keys, flight), listener=lambda apply: apply(events)
        )
        if coalesced:
            events.decision("action", COALESCED, "coalesced", "an identical build was already running; its result is shared")
        await self._record_app(spec, keys, previous)
        return self._result(events, keys, built.record, started, "miss", reason, bytes_ingested=built.bytes_ingested)

    def _result(self, events: EventStream, keys: Keys, record: records_pb2.ActionRecord, started: float, cache: str, reason: str, *, bytes_ingested: int) -> cached_pb2.BuildResult:
        duration = (time.perf_counter() - started) * 1000
        outputs = [cached_pb2.OutputFile(path=f.path, digest=f.digest, executable=f.executable) for f in record.outputs.files]
        total = sum(f.digest.size for f in record.outputs.files)
        metrics = cached_pb2.Metrics(
            decisions=events.decisions, phase_ms=events.phase_ms, output_files=len(outputs),
            output_bytes=total, bytes_ingested=bytes_ingested, duration_ms=duration,
        )
        events.emit(cached_pb2.BuildEvent(metrics=metrics))
        log.info("build", extra={"metrics": {"cache": cache, "reason": reason, "action_key": keys.action_key, "duration_ms": round(duration, 2), "phase_ms": dict(events.phase_ms), "output_files": len(outputs), "output_bytes": total}})
        return cached_pb2.BuildResult(
            action_key=keys.action_key, output_tree=record.output_tree, outputs=outputs, phase_ms=events.phase_ms,
            duration_ms=duration, cache=cache, reason=reason, lockfile=record.lockfile, log=record.log,
        )

    async def _record_app(self, spec: BuildSpec, keys: Keys, previous: records_pb2.AppRecord | None) -> None:
        record = records_pb2.AppRecord()
        record.CopyFrom(keys.app_record)
        record.last_build_unix_ms = int(time.time() * 1000)
        if previous is not None:
            record.purge_watermark_ns = previous.purge_watermark_ns
            record.builds = previous.builds + 1
        else:
            record.builds = 1
        await asyncio.wrap_future(self.store.index.put("apps", f"{spec.tenant}/{spec.app}".encode(), record.SerializeToString()))

    # ------------------------------------------------------------------ miss

    def workspace_path(self, spec: BuildSpec) -> Path:
        return self.settings.root / "work" / spec.tenant / spec.app

    async def _build_miss(self, spec: BuildSpec, keys: Keys, flight: Flight[Any, Any]) -> _Built:
        events = _Emitter(flight)
        deadline = time.monotonic() + spec.timeout_s
        async with self._app_locks.get(spec.owner):
            workspace = Workspace(self.workspace_path(spec), self.store.blobs.open)
            with Phase(events, "workspace", 0.05, 0.1):  # type: ignore[arg-type]
                report = await asyncio.to_thread(workspace.reconcile, spec.files)
            log.info("workspace reconciled", extra={"owner": spec.owner, "written": len(report.written), "removed": len(report.removed), "unchanged": report.unchanged})
            build_log = BuildLog()
            if "package-lock.json" not in spec.by_path:
                raise PreconditionFailed("package-lock.json is missing: this daemon builds only apps sent with their lockfile; run `npm install --package-lock-only` and send the lockfile too")
            with Phase(events, "install", 0.1, 0.6):  # type: ignore[arg-type]
                await self.steps.run(
                    INSTALL_COMMAND, source="install", workspace=workspace.path,
                    env=child_env(self._base_env, spec.env, install=True), network=True, deadline=deadline,
                    emit=events.log, build_log=build_log, what="npm ci",
                    binds=[(Path(self.settings.npm.cache_dir), Path(self.settings.npm.cache_dir), True)],
                )
            with Phase(events, "build", 0.6, 0.9):  # type: ignore[arg-type]
                argv = ["npm", "run", spec.script]
                if spec.mode != "production":
                    argv += ["--", "--mode", spec.mode]
                await self.steps.run(
                    argv, source="build", workspace=workspace.path, env=child_env(self._base_env, spec.env, install=False),
                    network=False, deadline=deadline, emit=events.log, build_log=build_log, what=f"npm run {spec.script}",
                )
                out_dir = await self._resolve_out_dir(spec, workspace.path, deadline, events, build_log)
            with Phase(events, "ingest", 0.9, 0.97):  # type: ignore[arg-type]
                out_path = (workspace.path / out_dir).resolve()
                if not out_path.is_relative_to(workspace.path.resolve()):
                    raise PreconditionFailed(f"build.outDir {out_dir!r} is outside the app; it must be inside the app's directory")
                files, size = await asyncio.to_thread(check_outputs, out_path, out_dir)
                tree_digest_, tree = await asyncio.to_thread(self._ingest, out_path)
                log_digest = await asyncio.to_thread(self.store.blobs.put_bytes, build_log.text())
            with Phase(events, "record", 0.97, 1.0):  # type: ignore[arg-type]
                record = records_pb2.ActionRecord(
                    outputs=tree, output_tree=tree_digest_.to_proto(), log=log_digest.to_proto(), deps_key=keys.deps_key,
                    created_unix_ms=int(time.time() * 1000), tenant=spec.tenant, app=spec.app,
                )
                failpoint("build.before_record")
                self.store.blobs.note_owner(spec.tenant, [tree_digest_, log_digest, *(Digest.from_proto(f.digest) for f in tree.files)])
                entry: RootEntry = await asyncio.wrap_future(self.store.put_root(
                    "actions", self._action_root_key(spec, keys.action_key), record.SerializeToString(),
                    blobs=(log_digest,), trees=(tree_digest_,), owner=spec.owner,
                ))
                self.store.lease(trees=[tree_digest_])
                failpoint("build.after_record")
            del entry
            return _Built(record, size)

    def _ingest(self, out_path: Path) -> tuple[Digest, Any]:
        with self.store.ingesting():
            digest, tree = self.store.trees.ingest(out_path, move=True)
        shutil.rmtree(out_path, ignore_errors=True)
        return digest, tree

    async def _resolve_out_dir(self, spec: BuildSpec, workspace: Path, deadline: float, events: Any, build_log: BuildLog) -> str:
        """Vite's build.outDir: 'dist' unless the config says otherwise, then asked of Vite itself."""
        configs = [f for f in spec.by_path if f.startswith("vite.config.")]
        if not any(b"outDir" in (self._content(spec, c)) for c in configs):
            return "dist"
        lines: list[str] = []
        await self.steps.run(
            ["node", "--input-type=module", "-e", OUT_DIR_PROBE, spec.mode], source="build", workspace=workspace,
            env=child_env(self._base_env, spec.env, install=False), network=False, deadline=deadline,
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


__all__ = ["BuildPipeline", "PipelineSettings", "BuildError"]
