"""Helpers of the package store's tests: real npm beside the layout, a registry of crafted packages on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from egress_support import LocalRegistry

from cached.deps.lockfile import registry_only
from cached.digest import Digest
from cached.execution.toolchain import probe_toolchain
from cached.packages.fetch import TarballFetcher
from cached.packages.installer import PackageInstaller, PackageTree
from cached.packages.layout import Layout, Platform, plan
from cached.store import Store
from cached.v1 import tree_pb2

NPM_CI = ["npm", "ci", "--include=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"]


def npm_env(cache: Path, registry: str, home: Path) -> dict[str, str]:
    """npm as the daemon's install runs it: no user config, registry, cache and trusted CAs given, resolved URLs left out."""
    env = {
        "PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8", "CI": "true",
        "npm_config_userconfig": str(home / "no-npmrc"), "npm_config_globalconfig": str(home / "no-npmrc-global"),
        "npm_config_cache": str(cache), "npm_config_registry": registry,
        "npm_config_omit_lockfile_registry_resolved": "true", "npm_config_update_notifier": "false",
        "npm_config_fund": "false", "npm_config_audit": "false", "npm_config_loglevel": "error",
    }
    cafile = npm_setting("cafile")
    if cafile not in ("", "null", "undefined"):
        env["npm_config_cafile"] = cafile
    if os.environ.get("NODE_EXTRA_CA_CERTS"):
        env["NODE_EXTRA_CA_CERTS"] = os.environ["NODE_EXTRA_CA_CERTS"]
    return env


def npm_setting(name: str) -> str:
    """A setting of the user's own npm config (the daemon reads its registry and CA file the same way)."""
    return subprocess.run(["npm", "config", "get", name], capture_output=True, text=True, check=True).stdout.strip()


def run_npm(argv: list[str], cwd: Path, env: Mapping[str, str]) -> None:
    proc = subprocess.run(argv, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=600, preexec_fn=lambda: os.umask(0o022))
    assert proc.returncode == 0, f"{' '.join(argv)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def npm_ci(app: Path, work: Path, cache: Path, registry: str) -> Path:
    """``npm ci --ignore-scripts`` of the app's package.json and lockfile (rewritten as the daemon's install rewrites it)."""
    work.mkdir(parents=True)
    shutil.copy(app / "package.json", work / "package.json")
    (work / "package-lock.json").write_bytes(registry_only((app / "package-lock.json").read_bytes(), registry))
    run_npm(NPM_CI, work, npm_env(cache, registry, work.parent))
    give_back(cache)
    return work / "node_modules"


SANDBOX_UID = SANDBOX_GID = 65534  # the daemons' default sandbox user, whose npm writes the shared cache


def give_back(cache: Path) -> None:
    """What this root npm wrote into a cache the daemons share goes to the sandbox's user, as the daemons'
    own sandboxed npm would have written it: else their next install cannot write there (EACCES)."""
    if os.geteuid() != 0:
        return
    for path in [cache, *cache.rglob("*")]:
        if not path.is_symlink():
            os.chown(path, SANDBOX_UID, SANDBOX_GID)


class Silent:
    """Where the installer's events go in these tests: recorded, not shown."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.progress: list[float] = []

    def log(self, stream: str, line: str, source: str) -> None:
        self.lines.append(line)

    def phase_started(self, name: str, progress: float) -> None:
        pass

    def phase_progress(self, name: str, progress: float) -> None:
        self.progress.append(progress)

    def phase_finished(self, name: str, progress: float) -> float:
        return 0.0


def platform() -> Platform:
    t = probe_toolchain()
    return Platform.of(t.os, t.arch, t.libc, t.node, t.npm)


@dataclass
class LaidOut:
    layout: Layout
    made: PackageTree
    events: Silent


def lay_out(store: Store, app: Path, registry: str, npm_cache: Path | None) -> LaidOut:
    layout = plan((app / "package-lock.json").read_bytes(), (app / "package.json").read_bytes(), platform())
    assert layout.ok, layout.fallback
    installer = PackageInstaller(store, TarballFetcher(registry, npm_cache))
    events = Silent()
    made = asyncio.run(installer.install(layout, events, (0.0, 1.0)))
    return LaidOut(layout, made, events)


def differences(ours: tree_pb2.Tree, npm: tree_pb2.Tree) -> list[str]:
    """What differs between two manifests, readably (empty when they are the same tree)."""
    a = {f.path: (f.digest.hash, f.executable) for f in ours.files}
    b = {f.path: (f.digest.hash, f.executable) for f in npm.files}
    out = [f"only laid out: {p}" for p in sorted(set(a) - set(b))]
    out += [f"only npm ci: {p}" for p in sorted(set(b) - set(a))]
    out += [f"differs: {p} {a[p]} vs {b[p]}" for p in sorted(set(a) & set(b)) if a[p] != b[p]]
    la = {s.path: s.target for s in ours.symlinks}
    lb = {s.path: s.target for s in npm.symlinks}
    out += [f"link {p}: {la.get(p)} vs {lb.get(p)}" for p in sorted(set(la) | set(lb)) if la.get(p) != lb.get(p)]
    if list(ours.directories) != list(npm.directories):
        out.append(f"empty directories: {list(ours.directories)} vs {list(npm.directories)}")
    return out


def ingest_copy(store: Store, node_modules: Path) -> tuple[Digest, tree_pb2.Tree]:
    copy = node_modules.parent / "node_modules.ingest"
    shutil.copytree(node_modules, copy, symlinks=True)
    with store.ingesting():
        return store.trees.ingest(copy, move=True)


# -- a registry of crafted packages --------------------------------------------------------------


class CraftedRegistry(LocalRegistry):
    """A LocalRegistry whose packuments carry the manifest fields npm resolves with (dependencies, bin, os...)."""

    def add(self, name: str, version: str, manifest: Mapping[str, Any], tarball: bytes) -> None:
        self.publish(name, version, tarball)
        doc = self.packuments[name]
        doc["versions"][version].update(manifest)  # type: ignore[index]
        if name.startswith("@"):
            self.packuments[name.replace("/", "%2f")] = doc  # npm asks for scoped packuments escaped


def tarball(members: list[tuple[str, Any]], top: str = "package") -> bytes:
    """A tarball from (path, spec) members; spec: bytes/str (a 0644 file), or a dict with ``data``,
    ``mode`` and ``type`` (``dir``, ``symlink``, ``hardlink``) for the unusual ones."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path, spec in members:
            spec = {"data": spec} if isinstance(spec, (str, bytes)) else dict(spec)
            data = spec.get("data", b"")
            data = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(path if path.startswith(("/", "..")) or spec.get("raw") else f"{top}/{path}")
            info.mtime = 499162500
            kind = spec.get("type", "file")
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, spec.get("mode", 0o755)
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, spec["target"], 0o777
                tar.addfile(info)
            elif kind == "hardlink":
                info.type, info.linkname, info.mode = tarfile.LNKTYPE, f"{top}/{spec['target']}", 0o644
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), spec.get("mode", 0o644)
                tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def package(name: str, version: str, manifest: Mapping[str, Any] | None = None, files: Mapping[str, Any] | None = None,
            extra: list[tuple[str, Any]] | None = None, top: str = "package") -> tuple[str, str, dict[str, Any], bytes]:
    meta = {"name": name, "version": version, **(manifest or {})}
    members: list[tuple[str, Any]] = [("package.json", json.dumps(meta, indent=2))]
    members += list((files or {"index.js": f"module.exports = {json.dumps(name + '@' + version)}\n"}).items())
    members += extra or []
    return name, version, meta, tarball(members, top)
