"""The dependency layer: node_modules from the store, npm only for a deps key never seen.

A deps key is installed once (single flight), in a scratch dir holding only
the files the key is made of, then its node_modules is moved into the store
as a tree and materialised read-only under ``trees/``. Builds see it through
an overlay (lower: the tree, upper: the build's scratch), so mounting is O(1)
whatever the size and nothing a build writes reaches the tree.

An install sees the fixed base environment only (``install_env``), never
the request's, and always installs devDependencies: its tree is shared by
every tenant whose request has the same deps key. Before a tree is recorded
it must hold the tools the build script runs (``vite`` in ``vite build``, as
``node_modules/.bin/vite``); a tree without them fails the install and is
never recorded, so it cannot break the next tenant's build. npm reaches the
registry alone (the install step's egress, ``cached/sandbox/egress.py``), and
the lockfile it installs from sends it nowhere else (``lockfile.py``).

With the hardlink method (where overlays cannot be mounted) the
workspace's node_modules shares inodes with the store's blobs, so a build
must never own them: the sandbox never chowns a file with more than one link
(``cached/sandbox/enter.py``), and the blobs stay root's, read-only to the
sandbox uid. A daemon that is not root runs builds as root of a user
namespace mapped to its own uid, the blobs' owner, who could chmod them:
there the hardlink method copies instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cached.errors import BuildFailed
from cached.deps.lockfile import registry_only
from cached.deps.shared import SharedDependencies
from cached.request.npmrc import normalise_registry, tenant_registries
from cached.keys import install_npmrc
from cached.execution.events import FlightEvents, Phase
from cached.execution.scripts import script_steps, script_tools
from cached.reasons import diff_maps
from cached.request.spec import BuildSpec
from cached.execution.scratch import scratch_dir
from cached.execution.singleflight import Flight, SingleFlight
from cached.execution.steps import BuildLog, StepRunner
from cached.digest import Digest
from cached.store import BlobNotFound, Store, TreeNotFound
from cached.packages.installer import PackageInstaller, PackageTree
from cached.packages.integrity import package_key
from cached.packages.layout import Layout, Platform, plan
from cached.packages.tarball import UnusualTarball
from cached.v1 import cached_pb2, records_pb2, tree_pb2

log = logging.getLogger("cached.deps.layer")

HIT = cached_pb2.CacheDecision.HIT
MISS = cached_pb2.CacheDecision.MISS
COALESCED = cached_pb2.CacheDecision.COALESCED
IMPORT_METHODS = ("auto", "overlay", "hardlink", "copy", "symlink")
MAX_NAMED = 5
RECENT_TREES = 32


def install_commands(allow_scripts: tuple[str, ...]) -> list[list[str]]:
    """The exact npm command lines, in order; part of the deps key."""
    # --include=dev: a tree always holds devDependencies (Vite is one), whatever
    # an environment or config would omit; the build step needs them.
    commands = [["npm", "ci", "--include=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"]]
    if allow_scripts:
        commands.append(["npm", "rebuild", "--ignore-scripts=false", *sorted(allow_scripts)])
    return commands


def _lockfile_entries(lockfile: bytes | None) -> dict[str, Any]:
    """A v2/v3 lockfile's ``packages`` map (empty when unreadable)."""
    try:
        data = json.loads(lockfile or b"{}")
    except ValueError:
        return {}
    packages = data.get("packages") if isinstance(data, dict) else None
    return packages if isinstance(packages, dict) else {}


def lockfile_packages(lockfile: bytes | None) -> dict[str, str]:
    """``node_modules/<name>`` -> version, from a v2/v3 lockfile (empty when unreadable)."""
    return _versions(_lockfile_entries(lockfile))


def _versions(packages: dict[str, Any]) -> dict[str, str]:
    return {k: str(v.get("version", "")) for k, v in packages.items() if k and isinstance(v, dict)}


def _refs(packages: dict[str, Any]) -> list[records_pb2.PackageRef]:
    """Every installable ``node_modules/...`` entry, with its real name (an alias's target)."""
    refs = []
    for path, entry in packages.items():
        if not path or not isinstance(entry, dict) or entry.get("link"):
            continue
        name = entry.get("name") if isinstance(entry.get("name"), str) else path.rsplit("node_modules/", 1)[-1]
        integrity = entry.get("integrity") if isinstance(entry.get("integrity"), str) else ""
        refs.append(records_pb2.PackageRef(path=path, name=name, version=str(entry.get("version", "")), integrity=integrity))
    return refs


def describe_package_changes(before: dict[str, str], after: dict[str, str]) -> str:
    changed = diff_maps(before, after)
    parts = []
    for key in changed[:MAX_NAMED]:
        name = key.rsplit("node_modules/", 1)[-1]
        old, new = before.get(key), after.get(key)
        parts.append(f"{name} added ({new})" if old is None else f"{name} removed ({old})" if new is None else f"{name} {old} -> {new}")
    more = len(changed) - MAX_NAMED
    return ", ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def missing_tools(spec: BuildSpec, node_modules: Path, path: str) -> list[str]:
    """The build script's tools (pre/post scripts included) found neither in ``node_modules/.bin`` nor on ``path``."""
    # follows the link npm made: it must lead to a file
    return _missing(spec, path, lambda tool: os.path.isfile(node_modules / ".bin" / tool))


def missing_bins(spec: BuildSpec, tree: tree_pb2.Tree, path: str) -> list[str]:
    """``missing_tools`` for a tree not yet on disk: its ``.bin`` links and the files they lead to."""
    files = {f.path for f in tree.files}
    links = {s.path: s.target for s in tree.symlinks}

    def has(tool: str) -> bool:
        target = links.get(f".bin/{tool}")
        return target is not None and os.path.normpath(f".bin/{target}") in files

    return _missing(spec, path, has)


def _missing(spec: BuildSpec, path: str, has_bin: Callable[[str], bool]) -> list[str]:
    package_json = spec.text("package.json") or "{}"
    try:
        steps = script_steps(package_json, spec.script, [])
    except (ValueError, AttributeError):
        return []
    missing: list[str] = []
    for step in steps:
        for tool in script_tools(step.command):
            if tool not in missing and not shutil.which(tool, path=path) and not has_bin(tool):
                missing.append(tool)
    return missing


def _missing_tools_error(missing: list[str]) -> BuildFailed:
    names = ", ".join(missing)
    return BuildFailed(
        f"the build script runs {names}, but the installed dependencies have no "
        f"{', '.join('node_modules/.bin/' + m for m in missing)}: add the package that provides it to "
        "devDependencies (and the lockfile). Nothing was recorded.", [],
    )


@dataclass
class Dependencies:
    """node_modules for one build: where the read-only tree is and how to put it in place."""

    deps_key: str
    tree: Digest
    path: Path
    files: int
    bytes: int
    method: str
    ms: float
    packages_reused: int = 0    # set for the build whose miss laid the tree out from the package store
    packages_fetched: int = 0
    bytes_downloaded: int = 0


class DependencyLayer:
    def __init__(self, store: Store, steps: StepRunner, root: Path, *, npm_cache: Path, method: str, overlay_ok: bool, allow_scripts: tuple[str, ...] = (), registry: str = "",
                 packages: PackageInstaller | None = None, platform: Platform | None = None) -> None:
        if method not in IMPORT_METHODS:
            raise ValueError(f"deps import method must be one of {IMPORT_METHODS}")
        self.store = store
        self.steps = steps
        self.root = root
        self.npm_cache = npm_cache
        self.allow_scripts = allow_scripts
        self.registry = registry  # where packages come from: lockfile entries resolved elsewhere are not followed
        self.commands = install_commands(allow_scripts)
        # Lockfiles of registry packages are laid out from the package store; None: every install is npm ci.
        self.packages = packages if platform is not None else None
        self.platform = platform
        self._registry_url = normalise_registry(registry) if registry else ""
        self._recent: OrderedDict[str, dict[str, str]] = OrderedDict()  # deps key -> packages, for the nearest tree
        self.shared: SharedDependencies | None = None  # trees npm made, through the shared tier (``shared.py``)
        if method == "auto":
            method = "overlay" if overlay_ok else "hardlink"
        if method == "overlay" and not overlay_ok:
            raise ValueError("overlay mounts are not available here; choose deps import method hardlink or copy")
        self.method = method
        self._flights: SingleFlight[records_pb2.DepsRecord, Any] = SingleFlight()

    async def ensure(self, spec: BuildSpec, deps_key: str, previous_deps_key: str, events: Any, deadline: float, env: dict[str, str]) -> Dependencies:
        """The materialised tree for this deps key, installing it first if it was never seen."""
        started = time.perf_counter()
        root = self.store.deps.get(deps_key.encode())
        if root is not None:
            record = records_pb2.DepsRecord.FromString(root.value)
            try:
                path = await asyncio.to_thread(self._materialise, Digest.from_proto(record.tree))
                events.decision("deps", HIT, "hit", f"{record.files} files from the store")
                self._remember(deps_key, record)
                return self._dependencies(deps_key, record, path, started)
            except (TreeNotFound, BlobNotFound, FileNotFoundError) as e:
                # A blob went missing under us (deleted by hand, or quarantined): install afresh.
                log.warning("dependency tree unusable, reinstalling", extra={"deps_key": deps_key, "error": str(e)})
                await asyncio.wrap_future(self.store.deps.delete([deps_key.encode()]))
                if self.packages is not None:
                    keys = [k for k in (package_key(r.integrity) for r in record.refs if r.integrity) if k]
                    await asyncio.to_thread(self.packages.packages.drop_damaged, keys)
                events.decision("deps", MISS, "corrupt", "the stored dependency tree was incomplete; installing again")
        if root is None and self.shared is not None:
            shared = await asyncio.to_thread(self.shared.fetch_tree, deps_key, spec.owner)
            if shared is not None:
                events.decision("deps", HIT, "hit", f"{shared.files} files from the shared tier (installed by another daemon)", "remote")
                self._remember(deps_key, shared)
                path = await asyncio.to_thread(self._materialise, Digest.from_proto(shared.tree))
                return self._dependencies(deps_key, shared, path, started)
        recent = list(self._recent.values())  # read on the loop, which alone changes it
        layout, nearest = await asyncio.to_thread(lambda: (self._layout(spec), self._nearest(spec, recent)))
        if root is None:
            reason, detail = self.store.tombstones.deps_reason(deps_key) or self._miss_reason(spec, previous_deps_key)
            if reason == "new_deps":
                detail += nearest
            events.decision("deps", MISS, reason, detail + self._how(layout))
        outcome, coalesced = await self._flights.run(
            deps_key, lambda flight: self._install(spec, deps_key, flight, deadline, env, layout), listener=lambda apply: apply(events),
        )
        record, counts = outcome
        if coalesced:
            events.decision("deps", COALESCED, "coalesced", "the same dependencies were being installed for another build")
            counts = (0, 0, 0)  # counted once, by the build that installed them
        self._remember(deps_key, record)
        path = await asyncio.to_thread(self._materialise, Digest.from_proto(record.tree))
        deps = self._dependencies(deps_key, record, path, started)
        deps.packages_reused, deps.packages_fetched, deps.bytes_downloaded = counts
        return deps

    def _layout(self, spec: BuildSpec) -> Layout | None:
        """How this app's node_modules can be laid out from the package store (None: no package store)."""
        if self.packages is None or self.platform is None:
            return None
        lock = spec.by_path.get("package-lock.json")
        if lock is None:
            return None
        manifest = spec.by_path.get("package.json")
        npmrc = spec.text(".npmrc")
        npmrc_keys = [line.split("=", 1)[0] for line in install_npmrc(npmrc).splitlines()]
        layout = plan(self._content(lock), self._content(manifest) if manifest else None, self.platform, npmrc_keys)
        for scope, url in tenant_registries(npmrc).items():
            if url != self._registry_url:  # packages from another registry: npm fetches them, through the allowlist
                layout.fallback.append(f".npmrc sets {scope + ':' if scope else ''}registry")
        return layout

    def _content(self, f: Any) -> bytes:
        if f.content is not None:
            return bytes(f.content)
        return self.store.blobs.read_bytes(f.digest)

    @staticmethod
    def _how(layout: Layout | None) -> str:
        if layout is None:
            return ""
        if layout.ok:
            return f"; laying out {len(layout.entries)} packages from the package store"
        return f"; installing with npm ci, because {layout.fallback_detail()}"

    def _remember(self, deps_key: str, record: records_pb2.DepsRecord) -> None:
        self._recent[deps_key] = dict(record.packages)
        self._recent.move_to_end(deps_key)
        while len(self._recent) > RECENT_TREES:
            self._recent.popitem(last=False)

    def _nearest(self, spec: BuildSpec, recent: list[dict[str, str]]) -> str:
        """The changes against the nearest of the trees this daemon used lately: a new app's miss says what is new."""
        lock = spec.by_path.get("package-lock.json")
        if lock is None or not recent:
            return ""
        after = lockfile_packages(self._content(lock))
        best = min(recent, key=lambda before: len(diff_maps(before, after)))
        detail = describe_package_changes(best, after)
        return f"; against the nearest stored tree: {detail}" if detail else ""

    def _materialise(self, tree: Digest) -> Path:
        """The read-only tree, rebuilt from the blobs (no npm) when its directory was deleted."""
        path = self.store.trees.materialise(tree)
        if not path.is_dir():
            self.store.trees.forget_materialised({path.name})
            path = self.store.trees.materialise(tree)
        return path

    def _dependencies(self, deps_key: str, record: records_pb2.DepsRecord, path: Path, started: float) -> Dependencies:
        return Dependencies(deps_key, Digest.from_proto(record.tree), path, record.files, record.bytes, self.method, (time.perf_counter() - started) * 1000)

    def _miss_reason(self, spec: BuildSpec, previous_deps_key: str) -> tuple[str, str]:
        if not previous_deps_key:
            return "new_deps", "these dependencies were never installed here"
        previous = self.store.deps.get(previous_deps_key.encode(), lease=False)
        if previous is None:
            return "deps_changed", "dependencies changed (the previous ones are no longer in the store)"
        before = dict(records_pb2.DepsRecord.FromString(previous.value).packages)
        lock = spec.by_path.get("package-lock.json")
        after = lockfile_packages(lock.content if lock else None)
        detail = describe_package_changes(before, after)
        return "deps_changed", f"dependencies changed: {detail}" if detail else "dependencies changed (package.json, .npmrc, patches/ or install scripts)"

    async def _install(self, spec: BuildSpec, deps_key: str, flight: Flight[Any, Any], deadline: float, env: dict[str, str],
                       layout: Layout | None) -> tuple[records_pb2.DepsRecord, tuple[int, int, int]]:
        emit = FlightEvents(flight)
        if layout is None or not layout.ok or self.packages is None:
            return await self._npm(spec, deps_key, emit, deadline, env, None), (0, 0, 0)
        try:
            with Phase(emit, "install", 0.1, 0.6):  # type: ignore[arg-type]
                made = await self.packages.install(layout, emit, (0.15, 0.55))
        except UnusualTarball as e:  # a tarball npm would unpack in a way the layout does not follow: npm's own install
            emit.log("stderr", f"[cached] installing with npm ci instead: {e}", "cached")
            log.warning("package store cannot take a tarball; npm ci", extra={"deps_key": deps_key, "error": str(e)})
            return await self._npm(spec, deps_key, emit, deadline, env, None), (0, 0, 0)
        counts = (made.reused, made.fetched, made.bytes_downloaded)
        if self._runs_scripts(layout):  # allowlisted install scripts: npm rebuild runs them on a copy of the layout
            return await self._npm(spec, deps_key, emit, deadline, env, made), counts
        missing = missing_bins(spec, made.tree, env.get("PATH", ""))
        if missing:
            raise _missing_tools_error(missing)
        record = await self._record(spec, deps_key, made.digest, made.tree, made.ms, "packages")
        emit.log("stderr", f"[cached] node_modules laid out from the package store: {made.reused} packages reused, {made.fetched} fetched "
                 f"({made.bytes_downloaded / 1e6:.1f} MB downloaded), {record.files} files, in {made.ms:.0f} ms", "cached")
        return record, counts

    def _runs_scripts(self, layout: Layout) -> bool:
        """Whether an allowlisted package is in the tree: npm's rebuild runs its scripts (it reads them from
        the package's own package.json, so a lockfile's ``hasInstallScript`` is not trusted to say)."""
        allowed = set(self.allow_scripts)
        return any(e.name in allowed or e.folder in allowed for e in layout.entries)

    async def _npm(self, spec: BuildSpec, deps_key: str, emit: FlightEvents, deadline: float, env: dict[str, str],
                   laid_out: PackageTree | None) -> records_pb2.DepsRecord:
        """npm's install in the sandbox: ``npm ci`` (then the rebuild), or with ``laid_out`` only the rebuild, on a copy of it."""
        with scratch_dir(self.root, "install") as scratch:
            await asyncio.to_thread(self._write_inputs, spec, scratch)
            started = time.perf_counter()
            commands = self.commands
            if laid_out is not None:
                await asyncio.to_thread(self.store.trees.copy_out, laid_out.tree, scratch / "node_modules")
                commands = [c for c in self.commands if c[1] == "rebuild"]
            with Phase(emit, "install" if laid_out is None else "rebuild", 0.1 if laid_out is None else 0.55, 0.6):  # type: ignore[arg-type]
                for argv in commands:
                    # Only npm's own fetch writes the cache every install shares; the rebuild step runs the
                    # allowlisted packages' scripts, which must not plant anything there for the next tenant.
                    writable = argv[1] != "rebuild"
                    await self.steps.run(
                        argv, source="install", workspace=scratch, env=env, network=True, deadline=deadline,
                        emit=emit.log, build_log=BuildLog(), what=" ".join(argv[:2]), binds=[(self.npm_cache, self.npm_cache, writable)],
                    )
            install_ms = (time.perf_counter() - started) * 1000 + (laid_out.ms if laid_out is not None else 0.0)
            node_modules = scratch / "node_modules"
            if not node_modules.is_dir():
                node_modules.mkdir()  # an app without dependencies still gets an (empty) tree
            missing = missing_tools(spec, node_modules, env.get("PATH", ""))
            if missing:
                raise _missing_tools_error(missing)
            with Phase(emit, "ingest_deps", 0.6, 0.65):  # type: ignore[arg-type]
                tree_digest, tree = await asyncio.to_thread(self._ingest, node_modules)
            record = await self._record(spec, deps_key, tree_digest, tree, install_ms, "npm ci" if laid_out is None else "packages + npm rebuild")
            if self.shared is not None:
                self.shared.publish_tree(deps_key, record, tree)
            return record

    async def _record(self, spec: BuildSpec, deps_key: str, digest: Digest, tree: tree_pb2.Tree, install_ms: float, method: str) -> records_pb2.DepsRecord:
        entries = _lockfile_entries(self._content(spec.by_path["package-lock.json"]))  # parsed once for both
        record = records_pb2.DepsRecord(
            tree=digest.to_proto(), files=len(tree.files), bytes=sum(f.digest.size for f in tree.files),
            packages=_versions(entries), created_unix_ms=int(time.time() * 1000), install_ms=install_ms,
            refs=_refs(entries), method=method,
        )
        await asyncio.wrap_future(self.store.deps.put(deps_key.encode(), record.SerializeToString(), trees=(digest,), owner=spec.owner))
        log.info("dependencies installed", extra={"deps_key": deps_key, "method": method, "files": record.files, "bytes": record.bytes, "install_ms": round(install_ms, 1)})
        return record

    def _write_inputs(self, spec: BuildSpec, scratch: Path) -> None:
        """Only what the deps key is made of: the install cannot depend on anything else.
        The lockfile's copy never sends npm anywhere but the registry (``lockfile.py``)."""
        for f in spec.files:
            if f.path in ("package.json", "package-lock.json", ".npmrc") or f.path.startswith("patches/"):
                target = scratch / f.path
                target.parent.mkdir(parents=True, exist_ok=True)
                if f.content is not None:
                    data = f.content
                else:
                    with self.store.blobs.open(f.digest) as src:
                        data = src.read()
                if f.path == "package-lock.json" and self.registry:
                    data = registry_only(data, self.registry, registries=tenant_registries(spec.text(".npmrc")))
                elif f.path == ".npmrc":
                    data = install_npmrc(data.decode("utf-8", "replace")).encode()
                target.write_bytes(data)

    def _ingest(self, node_modules: Path) -> tuple[Digest, Any]:
        with self.store.ingesting():
            return self.store.trees.ingest(node_modules, move=True)

    def place(self, deps: Dependencies, workspace: Path) -> None:
        """For the methods other than overlay: put node_modules into the workspace before the build."""
        target = workspace / "node_modules"
        if deps.method == "overlay":
            return
        if deps.method == "symlink":
            os.symlink(deps.path, target)
            return
        tree = self.store.trees.load(deps.tree)
        if deps.method == "hardlink" and not self._links_are_safe():
            deps.method = "copy"
        if deps.method == "hardlink":
            try:
                self.store.trees.link_out(tree, target)
                return
            except OSError as e:
                log.warning("hardlinks failed, copying node_modules", extra={"error": str(e)})
                deps.method = "copy"
        self.store.trees.copy_out(tree, target)

    def _links_are_safe(self) -> bool:
        """Whether a build may reach blobs through hardlinks: only when it runs as a uid that does not own them."""
        sandboxed = getattr(getattr(self.steps, "sandbox", None), "mode", "off") != "off"
        return _daemon_is_root() or not sandboxed  # sandbox off: builds are trusted, as the settings say


def _daemon_is_root() -> bool:
    return os.geteuid() == 0
