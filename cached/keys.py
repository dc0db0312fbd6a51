"""Content addresses of a build's inputs: the sources tree, the deps key and the action key.

Keys are made from the request alone (plus the toolchain probed at startup),
never from the workspace: computing a key reads no file, which keeps the hit
path to one hash of the request and one index read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cached.request.npmrc import install_lines
from cached.request.spec import BuildSpec
from cached.execution.toolchain import Toolchain
from cached.digest import Digest, Hasher
from cached.v1 import tree_pb2

PACKAGE_FIELDS = (
    "dependencies", "devDependencies", "optionalDependencies", "peerDependencies",
    "overrides", "resolutions", "bundleDependencies", "bundledDependencies", "workspaces",
    "os", "cpu", "engines", "packageManager",
)
INSTALL_SCRIPTS = ("preinstall", "install", "postinstall", "prepare")
# .npmrc keys that change what an install produces. Anything else (auth, log
# level, registry credentials) cannot change node_modules' content and stays
# out of the key, so it cannot split a cache, nor ever be written into one.
# Registry lines (``registry``, ``@scope:registry``) are kept too, normalised:
# request validation accepts only the daemon's registry and allowlisted ones
# (``cached/request/npmrc.py``).
NPMRC_KEYS = (
    "legacy-peer-deps", "strict-peer-deps", "install-links", "omit", "include", "optional",
    "engine-strict", "force", "node-linker", "install-strategy", "ignore-scripts",
    "prefer-dedupe", "save-exact", "os", "cpu", "libc", "foreground-scripts", "script-shell",
    "bin-links", "package-lock", "lockfile-version", "node-options",
)


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sources_tree(spec: BuildSpec) -> tree_pb2.Tree:
    return tree_pb2.Tree(files=[
        tree_pb2.FileNode(path=f.path, digest=f.digest.to_proto(), executable=f.executable)
        for f in spec.files
    ])


def tree_digest(hasher: Hasher, tree: tree_pb2.Tree) -> Digest:
    return hasher.bytes(tree.SerializeToString(deterministic=True))


def _json(spec: BuildSpec, path: str) -> Any:
    text = spec.text(path)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {"unparsed": text}


def install_npmrc(text: str | None) -> str:
    """The ``.npmrc`` an install sees: the keys its deps key holds and nothing else.

    A key left out of the deps key must not reach npm either (``workspaces``,
    ``dry-run``, a token, a proxy...): a shared tree can only depend on what
    its key names. Registry lines reach npm (validation accepted them), and
    the install's egress reaches no other registry whatever npm is told."""
    return "".join(f"{key}={_ini_value(value)}\n" for key, value in _npmrc(text).items())


def _ini_value(value: str) -> str:
    """``value`` written so that npm reads it back as it is: quoted when a comment character,
    a backslash or quotes would change it."""
    if any(c in value for c in ";#\\\"'") or value != value.strip():
        return json.dumps(value, ensure_ascii=False)
    return value


def _npmrc(text: str | None) -> dict[str, str]:
    """The settings of the deps key, read as npm reads the file (``cached/request/npmrc.py``)."""
    return install_lines(text, NPMRC_KEYS)


def normalised_lockfile(lock: Any) -> Any:
    """The lockfile without the root package's name and version: two apps with the same dependencies share it."""
    if not isinstance(lock, dict):
        return lock
    lock = dict(lock)
    lock.pop("name", None)
    lock.pop("version", None)
    packages = lock.get("packages")
    if isinstance(packages, dict) and isinstance(packages.get(""), dict):
        root = dict(packages[""])
        root.pop("name", None)
        root.pop("version", None)
        lock["packages"] = {**packages, "": root}
    return lock


@dataclass(frozen=True)
class DepsInputs:
    """What the deps key is made of; kept so a miss can say what changed."""

    lockfile: Any
    package: dict[str, Any]
    scripts: dict[str, str]
    npmrc: dict[str, str]
    patches: dict[str, str]
    toolchain: dict[str, str]
    command: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "lockfile": self.lockfile, "package": self.package, "scripts": self.scripts,
            "npmrc": self.npmrc, "patches": self.patches, "toolchain": self.toolchain, "command": self.command,
        }


def deps_inputs(spec: BuildSpec, toolchain: Toolchain, command: list[str]) -> DepsInputs:
    package = _json(spec, "package.json")
    package = package if isinstance(package, dict) else {}
    scripts = package.get("scripts") if isinstance(package.get("scripts"), dict) else {}
    return DepsInputs(
        lockfile=normalised_lockfile(_json(spec, "package-lock.json")),
        package={k: package[k] for k in PACKAGE_FIELDS if k in package},
        scripts={k: scripts[k] for k in INSTALL_SCRIPTS if k in scripts},
        npmrc=_npmrc(spec.text(".npmrc")),
        patches={f.path: str(f.digest) for f in spec.files if f.path.startswith("patches/")},
        toolchain={"node": toolchain.node, "npm": toolchain.npm, "os": toolchain.os, "arch": toolchain.arch, "libc": toolchain.libc},
        command=command,
    )


def deps_key(hasher: Hasher, inputs: DepsInputs) -> str:
    return f"{hasher.function}:{hasher.bytes(canonical(inputs.as_dict())).hash}"


@dataclass(frozen=True)
class ActionInputs:
    sources: Digest
    deps_key: str
    script: str
    mode: str
    env: dict[str, str]
    toolchain: str
    sandbox: str

    def key(self, hasher: Hasher) -> str:
        data = {
            "sources": str(self.sources), "deps": self.deps_key, "script": self.script, "mode": self.mode,
            "env": sorted(self.env.items()), "toolchain": self.toolchain, "sandbox": self.sandbox,
        }
        return f"{hasher.function}:{hasher.bytes(canonical(data)).hash}"
