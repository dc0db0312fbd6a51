"""The warm layer of a build: reuse the app's live builder, or start one, or say why not.

Called by the pipeline under the app's lock, after the dependencies are known.
``build`` returns the outputs of a warm build (copied into a scratch dir the
pipeline ingests and records as usual) or None, after which the pipeline builds
cold. Before returning None it has stopped the app's builder: a cold build
reconciles the workspace, which removes ``node_modules`` (the builder's
overlay mount point) and would pull the ground from under it.

What makes a warm result the same as a cold one:
- each build in the driver is a fresh ``createBuilder().buildApp()`` (config
  loaded again, new plugin instances); with ``--warm-rebuild session`` the
  driver rebuilds a Vite watch session instead, only for edits of files the
  last build read and with the app's own plugins made fresh for each rebuild,
  and starts a new session (a fresh build) for anything else: a new or removed
  file, ``.env*``, public/ (see driver.mjs). Either way Vite empties outDir and
  copies public/ itself;
- the workspace holds exactly the request's files (xxh3 reconcile) and the
  previous outDir is removed, as before a cold build;
- the ingested files are exactly those the bundle reported plus the publicDir
  Vite copied, and a listing of outDir must equal that set: a file written
  behind Vite's back (or one missing) is doubt, and doubt builds cold;
- the builder is retired when what it was started with changes: the deps key,
  the mode, the build script, the request env, or a top-level config file
  (every file at the app's top level except ``index.html``, ``.env*`` and
  ``*.md``: vite.config.*, tsconfig*.json, package.json, postcss/tailwind
  configs... may be cached by modules Node keeps loaded). ``index.html``,
  ``.env*`` and everything under ``src/`` and ``public/`` are read afresh by
  every build and never retire it.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import logging
import os
import random
import shlex
import shutil
import stat
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cached.execution.events import Phase
from cached.request.paths import check_path
from cached.request.spec import BuildSpec
from cached.execution.scripts import ScriptStep, script_env
from cached.execution.steps import BuildLog, StepRunner
from cached.warm.builder import DRIVER, Outcome, WarmBuilder, WarmError, _Route
from cached.warm.pool import WarmPool
from cached.execution.workspace import Workspace
from cached.sandbox import Overlay, SandboxSpec
from cached.v1 import cached_pb2, records_pb2

log = logging.getLogger("cached.warm")

HIT = cached_pb2.CacheDecision.HIT
MISS = cached_pb2.CacheDecision.MISS
SHADOW_PREFIX = ".shadow-"  # app ids cannot start with a dot: never a tenant's app
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20
MAX_NAMED = 5


def is_config_file(path: str) -> bool:
    """Top-level files whose change retires a builder (see the module docstring)."""
    if "/" in path:
        return False
    return not (path == "index.html" or path.startswith(".env") or path.lower().endswith(".md"))


def plain_vite_build(package_json: str, script: str) -> tuple[str | None, str]:
    """The script's command when it is exactly `vite build` (no pre/post scripts), else (None, why)."""
    try:
        scripts = json.loads(package_json).get("scripts", {})
    except (ValueError, AttributeError):
        return None, "package.json is not an object with scripts"
    if not isinstance(scripts, dict):
        return None, "package.json has no scripts"
    command = scripts.get(script)
    if not isinstance(command, str):
        return None, f"package.json has no {script!r} script"
    for extra in (f"pre{script}", f"post{script}"):
        if extra in scripts:
            return None, f"the {extra!r} script runs around the build"
    try:
        words = shlex.split(command)
    except ValueError:
        words = []
    if words != ["vite", "build"]:
        return None, f"the {script!r} script is {command!r}, not a plain `vite build`"
    return command, ""


def builder_key(spec: BuildSpec, deps_key: str, command: str, toolchain: str) -> tuple[str, dict[str, str]]:
    """A digest of everything a builder process is started with, and its config files."""
    config = {f.path: str(f.digest) for f in spec.files if is_config_file(f.path)}
    env = {k: hashlib.sha256(v.encode()).hexdigest() for k, v in sorted(spec.env.items())}
    material = json.dumps({"deps": deps_key, "mode": spec.mode, "script": [spec.script, command], "env": env,
                           "toolchain": toolchain, "config": config}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest(), config


def _names(paths: list[str]) -> str:
    more = len(paths) - MAX_NAMED
    return ", ".join(paths[:MAX_NAMED]) + (f" (and {more} more)" if more > 0 else "")


class WarmWorkspace(Workspace):
    """The reconcile of a cold build, except that the top-level ``node_modules``
    directory (the live builder's overlay mount point) is kept: it is empty here,
    the builder's tree is mounted over it in the builder's own mount namespace."""

    def _prune(self, dir_fd: int, prefix: str, wanted: Any, wanted_dirs: set[str], report: Any) -> None:
        if prefix == "":
            try:
                st = os.lstat("node_modules", dir_fd=dir_fd)
            except FileNotFoundError:
                st = None
            if st is not None and stat.S_ISDIR(st.st_mode):
                wanted_dirs = wanted_dirs | {"node_modules"}
        super()._prune(dir_fd, prefix, wanted, wanted_dirs, report)


@dataclass
class WarmBuilt:
    """A warm build's outputs, copied out of the workspace into ``out_path`` (daemon-owned)."""

    out_path: Path
    out_dir: str          # build.outDir relative to the app, for messages
    build_log: BuildLog
    outcome: Outcome
    reused: bool
    scratch: Path

    def cleanup(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)


class _NoFlight:
    """A flight nobody listens to (the shadow build's events go nowhere)."""

    def publish(self, apply: Callable[[Any], None]) -> None:
        pass


ColdBuild = Callable[[BuildSpec], Awaitable[records_pb2.ActionRecord]]


class WarmLayer:
    def __init__(self, pool: WarmPool, steps: StepRunner, root: Path, node_path: str, toolchain: str,
                 open_blob: Callable[[Any], Any], cold_build: ColdBuild | None = None,
                 scratch_parent: Callable[[Path], Path] | None = None) -> None:
        self.pool = pool
        # where a builder's overlay dirs go: beside its workspace when that is a capped mount
        self._scratch_parent = scratch_parent or (lambda workspace: root / "scratch")
        self._open_blob = open_blob
        self.steps = steps
        self.root = root
        self.node_path = node_path
        self.toolchain = toolchain
        self.cold_build = cold_build
        self._shadows: set[asyncio.Task[None]] = set()
        self._random = random.Random()

    # ------------------------------------------------------------- the build

    async def build(self, spec: BuildSpec, deps_key: str, deps_method: str, deps_path: Path, workspace_path: Path,
                    events: Any, deadline: float, build_env: dict[str, str], package_json: str) -> WarmBuilt | None:
        owner = spec.owner
        reason, detail, command = self._eligible(spec, deps_method, package_json)
        if command is None:
            await self.pool.retire(owner, "cold_build")
            events.decision("warm", MISS, reason, detail)
            return None
        key, config = builder_key(spec, deps_key, command, self.toolchain)
        builder = self.pool.get(owner)
        start_why = f"no live builder for this app: starting one ({len(self.pool)} of {self.pool.settings.max_builders} in the pool)"
        if builder is not None and not builder.alive:
            self.pool.crashes += 1
            await self.pool.retire(owner, "crashed")
            builder, start_why = None, f"the app's builder had exited (code {builder.proc.returncode}): starting a new one"
        elif builder is not None and builder.key != key:
            label, why = self._changed(builder, deps_key, config)
            await self.pool.retire(owner, label)
            builder, start_why = None, f"{why}: the old builder was retired, starting a new one"
        if builder is not None:
            builder.busy = True  # not evicted by another app's build while this one reconciles
        workspace = WarmWorkspace(workspace_path, self._open_blob)
        build_log = BuildLog()
        scratch = self.root / "scratch" / f"warm-out-{uuid.uuid4().hex[:12]}"
        try:
            with Phase(events, "workspace", 0.65, 0.7):
                report = await asyncio.to_thread(workspace.reconcile, spec.files)
            reused = builder is not None
            if builder is None:
                events.decision("warm", MISS, "started", start_why)
                builder = await self._start(spec, key, deps_key, config, command, deps_path, workspace_path, build_env, package_json, deadline, events)
            changes = (list(report.written), list(report.removed))
            with Phase(events, "build", 0.7, 0.9):
                try:
                    outcome = await self._rebuild(builder, deadline, events, build_log, *changes)
                except WarmError as e:
                    if not (reused and e.reason == "crashed"):
                        raise
                    # It died since its last build (its exit not yet noticed): restart it once.
                    self.pool.crashes += 1
                    await self.pool.retire(owner, "crashed")
                    events.decision("warm", MISS, "started", "the app's builder had exited: starting a new one")
                    builder = await self._start(spec, key, deps_key, config, command, deps_path, workspace_path, build_env, package_json, deadline, events)
                    reused, build_log = False, BuildLog()
                    outcome = await self._rebuild(builder, deadline, events, build_log, *changes)
            with Phase(events, "collect", 0.9, 0.92):
                scratch.mkdir(parents=True)
                out_path = scratch / "out"
                out_dir = await asyncio.to_thread(collect_outputs, outcome, workspace_path, out_path)
        except WarmError as e:
            shutil.rmtree(scratch, ignore_errors=True)
            await self.pool.retire(owner, f"fallback_{e.reason}")
            self.pool.record_fallback(e.reason)
            log.warning("warm build fell back to cold", extra={"owner": owner, "reason": e.reason, "detail": e.detail[:500]})
            events.decision("warm", MISS, "fallback", f"{_first_line(e.detail)}; building cold")
            events.log("stderr", f"[cached] warm builder: {_first_line(e.detail)} ({e.reason}); building cold", "cached")
            return None
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            await asyncio.shield(self.pool.retire(owner, "interrupted"))  # its state is unknown
            raise
        how = _HOW.get(outcome.how, outcome.how or "a build")
        if reused:
            why = f"; {outcome.why}" if outcome.why and outcome.how != "rebuild" else ""
            events.decision("warm", HIT, "reused", f"rebuilt by the app's warm builder ({how}{why}) in {outcome.wall_ms:.0f} ms "
                                                 f"({len(report.written)} files written, {len(report.removed)} removed)")
        self.pool.record_how(outcome.how)
        events.log("stderr", f"[cached] warm build: {outcome.wall_ms:.0f} ms ({'reused' if reused else 'new'} builder, build {builder.builds}, {how})", "cached")
        return WarmBuilt(out_path, out_dir, build_log, outcome, reused, scratch)

    async def recorded(self, spec: BuildSpec, built: WarmBuilt, record: records_pb2.ActionRecord) -> None:
        """After the pipeline recorded a warm result: durations, memory bound, maybe a shadow check."""
        if built.reused:
            self.pool.record_rebuild(built.outcome.wall_ms)
        await self.pool.enforce_memory(keep=spec.owner)
        share = self.pool.settings.shadow_share
        if self.cold_build is not None and share > 0 and self._random.random() < share:
            task = asyncio.get_running_loop().create_task(self._shadow(spec, record))
            self._shadows.add(task)
            task.add_done_callback(self._shadows.discard)

    async def stop(self) -> None:
        for task in list(self._shadows):
            task.cancel()
        for task in list(self._shadows):
            try:
                await task
            except BaseException:  # noqa: BLE001 - shutting down
                pass
        await self.pool.stop()

    async def wait_shadows(self) -> None:
        while self._shadows:
            await asyncio.gather(*list(self._shadows), return_exceptions=True)

    # ------------------------------------------------------------ internals

    def _eligible(self, spec: BuildSpec, deps_method: str, package_json: str) -> tuple[str, str, str | None]:
        if spec.force:
            return "forced", "the request asked for a fresh build (force): building cold", None
        if spec.owner in self.pool.disabled:
            return "disabled", f"warm builds are off for this app: {self.pool.disabled[spec.owner]}", None
        if deps_method != "overlay":
            return "not_eligible", f"node_modules reaches builds by {deps_method}, not an overlay", None
        command, why = plain_vite_build(package_json, spec.script)
        if command is None:
            return "not_eligible", why, None
        return "", "", command

    def _changed(self, builder: WarmBuilder, deps_key: str, config: dict[str, str]) -> tuple[str, str]:
        if builder.deps_key != deps_key:
            return "deps_changed", "the dependencies changed"
        changed = sorted(p for p in set(builder.config) | set(config) if builder.config.get(p) != config.get(p))
        if changed:
            return "config_changed", f"config files changed: {_names(changed)}"
        return "settings_changed", "the mode, the env or the build script changed"

    async def _start(self, spec: BuildSpec, key: str, deps_key: str, config: dict[str, str], command: str, deps_path: Path,
                     workspace: Path, build_env: dict[str, str], package_json: str, deadline: float, events: Any) -> WarmBuilder:
        scratch = self._scratch_parent(workspace) / f"warm-{uuid.uuid4().hex[:12]}"
        (scratch / "upper").mkdir(parents=True)
        (scratch / "work").mkdir()
        overlay = Overlay(lower=deps_path, upper=scratch / "upper", work=scratch / "work", target=workspace / "node_modules")
        env = script_env(build_env, workspace, package_json, ScriptStep(spec.script, command), self.node_path)
        sandbox_spec = SandboxSpec(
            argv=[self.node_path, str(DRIVER), spec.mode if spec.mode != "production" else "", self.pool.settings.rebuild],
            workspace=workspace, env=env, network=False, hide=self.steps.hide,
            binds=((DRIVER, DRIVER, False),), overlay=overlay, uid=self.steps.uid, gid=self.steps.gid,
            limits=self.steps.limits, label="warm", view=self.steps.view,
        )
        route = _Route()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            shutil.rmtree(scratch, ignore_errors=True)
            raise WarmError("timeout", "the build's deadline passed before a builder could start")
        try:
            async with self.steps.slots:
                proc = await self.steps.sandbox.spawn(sandbox_spec, route)
                self.steps.processes_started += 1
                builder = WarmBuilder(spec.owner, key, deps_key, config, proc, scratch, workspace, route)
                try:
                    await builder.wait_ready(min(self.pool.settings.start_timeout_s, remaining))
                    await builder.pause()  # tenant code (its config, plugins) runs only inside a build
                except BaseException:
                    await asyncio.shield(builder.stop())
                    raise
        except WarmError:
            raise
        except Exception as e:  # a sandbox that cannot spawn: cold will say more
            shutil.rmtree(scratch, ignore_errors=True)
            raise WarmError("spawn", f"the builder could not start: {e}") from e
        log.info("warm builder started", extra={"owner": spec.owner, "vite": builder.info.get("vite"), "pid": proc.pid})
        await self.pool.add(builder)
        return builder

    async def _rebuild(self, builder: WarmBuilder, deadline: float, events: Any, build_log: BuildLog,
                       changed: list[str], removed: list[str]) -> Outcome:
        def emit(stream: str, text: str) -> None:
            build_log.add(text)
            events.log(stream, text, "build")

        async with self.steps.slots:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WarmError("timeout", "the build's deadline passed before the warm build could start")
            return await builder.build(remaining, emit, changed, removed)

    async def _shadow(self, spec: BuildSpec, record: records_pb2.ActionRecord) -> None:
        """Build the same inputs cold under a shadow app; a different output tree disables warm builds for the app."""
        assert self.cold_build is not None
        shadow = replace(spec, app=SHADOW_PREFIX + spec.app, force=True, deploy=None)
        self.pool.shadow_checks += 1
        try:
            cold = await self.cold_build(shadow)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - the check failed, the warm result stands
            self.pool.shadow_errors += 1
            log.warning("warm shadow check could not build cold", extra={"owner": spec.owner, "error": str(e)[:300]})
            return
        if cold.output_tree == record.output_tree:
            log.info("warm shadow check: identical", extra={"owner": spec.owner, "tree": cold.output_tree.hash})
            return
        warm_files = {f.path: f.digest.hash for f in record.outputs.files}
        cold_files = {f.path: f.digest.hash for f in cold.outputs.files}
        differ = sorted(p for p in set(warm_files) | set(cold_files) if warm_files.get(p) != cold_files.get(p))
        why = f"a shadow cold build differed from a warm result ({_names(differ)})"
        self.pool.shadow_mismatches += 1
        self.pool.disable(spec.owner, why)
        await self.pool.retire(spec.owner, "shadow_mismatch")
        log.error("warm shadow check: MISMATCH, warm builds disabled for the app", extra={"owner": spec.owner, "files": differ[:20]})


_HOW = {
    "rebuild": "a rebuild of its watch session",
    "session-start": "a new watch session",
    "fresh": "a fresh Vite build",
}


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:500]


# ---------------------------------------------------------------- outputs


def collect_outputs(outcome: Outcome, workspace: Path, dest: Path) -> str:
    """Copies the files this build emitted (bundle + copied publicDir) from outDir to ``dest``.

    Raises WarmError on any doubt: an outDir outside the app, a reported path
    outside outDir, a listing of outDir that differs from the reported set, a
    symlink or special file anywhere on the way. Every open is O_NOFOLLOW per
    component (the builder is alive and could swap a directory for a link),
    and files are copied, never linked or moved (it could still write to them).
    """
    ws = os.path.realpath(workspace)
    out_abs = os.path.normpath(outcome.out_dir) if outcome.out_dir else ""
    if not out_abs or not os.path.isabs(out_abs) or os.path.commonpath([ws, out_abs]) != ws or out_abs == ws:
        raise WarmError("outputs", f"build.outDir {outcome.out_dir!r} is not a directory inside the app")
    out_rel = os.path.relpath(out_abs, ws)
    expected: set[str] = set()
    for path in outcome.files:
        rel = _inside(out_abs, path)
        if rel is None:
            raise WarmError("outputs", f"the bundle wrote {path!r}, outside build.outDir")
        expected.add(rel)
    if outcome.public_dir:
        if os.path.normpath(outcome.public_out) != out_abs:
            raise WarmError("outputs", "Vite copied publicDir somewhere else than build.outDir")
        expected |= _public_files(ws, outcome.public_dir)
    if not expected:
        raise WarmError("outputs", f"the build reported no files in {out_rel}/")
    for rel in expected:
        try:
            check_path(rel, output_dir="")
        except Exception as e:  # noqa: BLE001 - any name a client could not write back
            raise WarmError("outputs", f"output {out_rel}/{rel} has an unusable name: {e}") from None
    root_fd = os.open(ws, _DIR_FLAGS)
    try:
        out_fd = _open_dir_beneath(root_fd, out_rel)
        try:
            listed = _list_files(out_fd, "")
            if listed != expected:
                extra, missing = sorted(listed - expected), sorted(expected - listed)
                raise WarmError("outputs", f"{out_rel}/ does not hold exactly what the bundle reported "
                                           f"(unreported: {_names(extra) or 'none'}; missing: {_names(missing) or 'none'})")
            dest.mkdir(parents=True)
            for rel in sorted(expected):
                _copy_beneath(out_fd, rel, dest / rel)
        finally:
            os.close(out_fd)
    finally:
        os.close(root_fd)
    return out_rel


def _inside(root: str, path: str) -> str | None:
    if not os.path.isabs(path):
        return None
    norm = os.path.normpath(path)
    if os.path.commonpath([root, norm]) != root or norm == root:
        return None
    return os.path.relpath(norm, root).replace(os.sep, "/")


def _public_files(ws: str, public_dir: str) -> set[str]:
    """What Vite's copyDir copied: every file below publicDir (inside the app, no links)."""
    rel = _inside(ws, os.path.normpath(public_dir))
    if rel is None:
        raise WarmError("outputs", f"publicDir {public_dir!r} is not inside the app")
    root_fd = os.open(ws, _DIR_FLAGS)
    try:
        try:
            fd = _open_dir_beneath(root_fd, rel)
        except WarmError:
            return set()  # no public dir: nothing was copied
        try:
            return _list_files(fd, "")
        finally:
            os.close(fd)
    finally:
        os.close(root_fd)


def _open_dir_beneath(root_fd: int, rel: str) -> int:
    fd = os.dup(root_fd)
    for part in rel.split("/"):
        if part in ("", "."):
            continue
        try:
            nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise WarmError("outputs", f"{rel} is not a plain directory") from None
            raise WarmError("outputs", f"cannot open {rel}: {e.strerror}") from None
        os.close(fd)
        fd = nfd
    return fd


def _list_files(dir_fd: int, prefix: str) -> set[str]:
    found: set[str] = set()
    for name in os.listdir(dir_fd):
        st = os.lstat(name, dir_fd=dir_fd)
        if stat.S_ISDIR(st.st_mode):
            sub = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            try:
                found |= _list_files(sub, f"{prefix}{name}/")
            finally:
                os.close(sub)
        elif stat.S_ISREG(st.st_mode):
            found.add(prefix + name)
        else:
            raise WarmError("outputs", f"{prefix}{name} is a symlink or a special file; outputs must be regular files")
    return found


def _copy_beneath(out_fd: int, rel: str, target: Path) -> None:
    parent, _, name = rel.rpartition("/")
    dfd = _open_dir_beneath(out_fd, parent) if parent else os.dup(out_fd)
    try:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dfd)
        except OSError as e:
            raise WarmError("outputs", f"cannot open output {rel}: {e.strerror}") from None
    finally:
        os.close(dfd)
    with os.fdopen(fd, "rb") as src:
        st = os.fstat(src.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise WarmError("outputs", f"output {rel} is not a regular file")
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as out:
            while chunk := src.read(_CHUNK):
                out.write(chunk)
        if st.st_mode & 0o100:
            target.chmod(0o755)
