"""node_modules from a lockfile, decided the way ``npm ci --ignore-scripts`` decides it.

npm's v2/v3 lockfile ``packages`` map is already the layout: every key is an
install path. What npm still decides at install time, and this module with
it (following arborist, bin-links and npm-install-checks):

- **which entries are installed**: every entry reachable from the root
  through its edges (``dependencies``, ``optionalDependencies``,
  ``peerDependencies``, and the root's ``devDependencies``), resolved the way
  Node resolves them (the nearest ``node_modules`` upwards). An optional
  entry whose ``os``, ``cpu``, ``libc`` or ``engines`` do not match this
  machine fails, and with it its *optional set*: the entries that reach it by
  required edges, and the dependencies that nothing outside that set needs
  (arborist's ``optionalSet`` and ``gatherDepSet``);
- **the bins**: for each installed entry with a ``bin``, a link
  ``<its node_modules>/.bin/<name>`` to ``../<its dir>/<path>``, when the
  target exists; the first entry (by depth, then path) to claim a name keeps
  it; the target is made executable and a CRLF after its ``#!`` line becomes LF;
- **``node_modules/.package-lock.json``**: the installed entries, as npm
  writes its hidden lockfile (``resolved`` left out, as the daemon's npm
  config says for registry packages).

What this module cannot lay out exactly is named in ``Layout.fallback``
(a link or workspace, a git or tarball dependency, an entry without a sha512
integrity, bundled dependencies, a lockfile out of step with package.json,
an ``.npmrc`` that changes how npm lays out a tree...): the dependency
layer runs ``npm ci`` for those and says which entries forced it.

Entry order follows the lockfile's, which npm writes sorted (its
``localeCompare``): the hidden lockfile and the bin claims use it.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import nodesemver

from cached.deps.lockfile import _registry_tarball, _is_web
from cached.packages.integrity import package_key

DEP_FIELDS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")
# .npmrc keys (in the deps key) under which npm lays a lockfile out in a way this module does not follow.
LAYOUT_NPMRC_KEYS = (
    "install-links", "omit", "include", "optional", "engine-strict", "force", "node-linker", "install-strategy",
    "ignore-scripts", "os", "cpu", "libc", "bin-links", "legacy-peer-deps",
)
CPU_NAMES = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm", "armv6l": "arm",
             "i386": "ia32", "i686": "ia32", "ppc64le": "ppc64", "s390x": "s390x", "riscv64": "riscv64", "loongarch64": "loong64"}
MAX_NAMED = 5
OPTIONAL_EDGES = ("optional", "peerOptional")


@dataclass(frozen=True)
class Platform:
    """What npm compares optional packages' ``os``, ``cpu``, ``libc`` and ``engines`` with."""

    os: str
    cpu: str
    libc: str  # "glibc", "musl" or ""
    node: str  # "20.20.2"
    npm: str

    @staticmethod
    def of(os_name: str, machine: str, libc: str, node: str, npm: str) -> "Platform":
        family = "glibc" if libc.startswith("glibc") else "musl" if libc.startswith("musl") else ""
        return Platform(os_name, CPU_NAMES.get(machine, machine), family, node.lstrip("v"), npm.lstrip("v"))


@dataclass
class Entry:
    path: str            # "node_modules/a/node_modules/@s/b"
    name: str            # the real name (an alias's target)
    version: str
    integrity: str
    key: str             # the package store's key (sha512 hex)
    bins: dict[str, str]  # link name -> path inside the package
    raw: dict[str, Any]

    @property
    def folder(self) -> str:
        """The name it sits under: the alias, or the name."""
        return self.path.rsplit("node_modules/", 1)[-1]

    @property
    def depth(self) -> int:
        return self.path.count("node_modules/")


@dataclass(frozen=True)
class BinLink:
    path: str    # relative to node_modules: ".bin/vite", "a/node_modules/.bin/x"
    target: str  # "../vite/bin/vite.js"
    entry: Entry
    file: str    # the target, inside the entry's package


@dataclass
class Layout:
    entries: list[Entry] = field(default_factory=list)       # the packages to place, in lockfile order
    skipped: list[str] = field(default_factory=list)         # optional entries this machine does not install
    fallback: list[str] = field(default_factory=list)        # why npm ci must lay this one out
    listed: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # every installed entry, bundled ones too
    name: str = ""
    version: str | None = None

    @property
    def ok(self) -> bool:
        return not self.fallback

    def fallback_detail(self) -> str:
        named = "; ".join(self.fallback[:MAX_NAMED])
        more = f" (and {len(self.fallback) - MAX_NAMED} more)" if len(self.fallback) > MAX_NAMED else ""
        return named + more

    def bins(self, files_of: Mapping[str, set[str]]) -> list[BinLink]:
        """The ``.bin`` links npm makes; ``files_of``: package key -> the paths of its files."""
        claimed: set[str] = set()
        links: list[BinLink] = []
        order = sorted(range(len(self.entries)), key=lambda i: (self.entries[i].depth, i))
        for i in order:
            entry = self.entries[i]
            folder = entry.path[len("node_modules/"):]
            holder = folder[: len(folder) - len(entry.folder)]  # "" or "a/node_modules/"
            files = files_of.get(entry.key, set())
            for name, target in entry.bins.items():
                link = f"{holder}.bin/{name}"
                if link in claimed:
                    continue
                claimed.add(link)
                if target not in files:
                    continue  # npm links only what the package has
                links.append(BinLink(link, f"../{entry.folder}/{target}", entry, target))
        return sorted(links, key=lambda b: b.path)

    def hidden_lockfile(self) -> bytes:
        """``node_modules/.package-lock.json`` as npm writes it."""
        data: dict[str, Any] = {"name": self.name}
        if self.version is not None:
            data["version"] = self.version
        data["lockfileVersion"] = 3
        data["requires"] = True
        packages = {}
        for path, raw in self.listed:
            meta = dict(raw)
            meta.pop("resolved", None)  # omit-lockfile-registry-resolved: every entry here is a registry package
            packages[path] = meta
        data["packages"] = packages
        return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


def normalise_bins(bin_field: Any, name: str) -> dict[str, str]:
    """npm-normalize-package-bin: link names are plain names, targets relative paths inside the package."""
    if isinstance(bin_field, str):
        bin_field = {name.rsplit("/", 1)[-1]: bin_field}
    if not isinstance(bin_field, dict):
        return {}
    clean: dict[str, str] = {}
    for key, target in bin_field.items():
        base = posixpath.normpath("/" + posixpath.basename(str(key).replace("\\", "/").replace(":", "/")))[1:]
        if not isinstance(target, str) or not base:
            continue
        path = posixpath.normpath("/" + target.replace("\\", "/"))[1:]
        if path:
            clean[base] = path
    return clean


def _check_list(value: str, wanted: Any) -> bool:
    """npm-install-checks' checkList: any listed match, or every entry a negation that misses."""
    items = [wanted] if isinstance(wanted, str) else list(wanted) if isinstance(wanted, list) else []
    if len(items) == 1 and items[0] == "any":
        return True
    negated, match = 0, False
    for item in items:
        item = str(item)
        if item.startswith("!"):
            negated += 1
            if value == item[1:]:
                return False
        else:
            match = match or value == item
    return match or negated == len(items)


def fits(entry: Mapping[str, Any], platform: Platform) -> bool:
    """Whether npm would install this optional entry here (platform and engines)."""
    if "os" in entry and not _check_list(platform.os, entry["os"]):
        return False
    if "cpu" in entry and not _check_list(platform.cpu, entry["cpu"]):
        return False
    if "libc" in entry:
        if platform.os != "linux" or not platform.libc or not _check_list(platform.libc, entry["libc"]):
            return False
    engines = entry.get("engines")
    if isinstance(engines, dict):
        for tool, version in (("node", platform.node), ("npm", platform.npm)):
            wanted = engines.get(tool)
            if isinstance(wanted, str) and version and not _satisfies(version, wanted):
                return False
    return True


def _satisfies(version: str, wanted: str) -> bool:
    try:
        return bool(nodesemver.satisfies(version, wanted, loose=False, include_prerelease=True))
    except (ValueError, TypeError):
        return True  # npm ignores an engines range it cannot read


def _parent(path: str) -> str:
    i = path.rfind("/node_modules/")
    return path[:i] if i >= 0 else ""


class _Graph:
    """Entries and their edges, resolved as Node resolves a require from each entry's directory."""

    def __init__(self, packages: Mapping[str, dict[str, Any]]) -> None:
        self.packages = packages
        self.out: dict[str, dict[str, tuple[str | None, str]]] = {}  # from -> name -> (to, edge type)
        self.into: dict[str, list[tuple[str, bool]]] = {p: [] for p in packages}  # to -> (from, optional edge)
        for path, entry in packages.items():
            edges = self._edges(entry, root=path == "")
            resolved = {name: (self._resolve(path, name), kind) for name, kind in edges.items()}
            self.out[path] = resolved
            for to, kind in resolved.values():
                if to is not None:
                    self.into[to].append((path, kind in OPTIONAL_EDGES))

    @staticmethod
    def _edges(entry: Mapping[str, Any], root: bool) -> dict[str, str]:
        """name -> edge type; later kinds override earlier ones, in arborist's order."""
        edges: dict[str, str] = {}
        peers = entry.get("peerDependencies")
        meta = entry.get("peerDependenciesMeta") if isinstance(entry.get("peerDependenciesMeta"), dict) else {}
        if isinstance(peers, dict):
            for name in peers:
                edges[name] = "peerOptional" if isinstance(meta.get(name), dict) and meta[name].get("optional") else "peer"
        kinds = [("dependencies", "prod"), ("optionalDependencies", "optional")] + ([("devDependencies", "dev")] if root else [])
        for field_name, kind in kinds:
            deps = entry.get(field_name)
            if isinstance(deps, dict):
                for name in deps:
                    edges[name] = kind
        return edges

    def _resolve(self, frm: str, name: str) -> str | None:
        base = frm
        while True:
            candidate = f"{base}/node_modules/{name}" if base else f"node_modules/{name}"
            if candidate in self.packages:
                return candidate
            if not base:
                return None
            base = _parent(base)

    def reachable(self) -> set[str]:
        """What npm keeps: a package reached only through optional peer edges is extraneous (they install nothing)."""
        seen = {""}
        stack = [""]
        while stack:
            for to, kind in self.out[stack.pop()].values():
                if to is not None and to not in seen and kind != "peerOptional":
                    seen.add(to)
                    stack.append(to)
        return seen

    def optional_set(self, node: str, present: set[str]) -> set[str]:
        """arborist's optionalSet: what goes with a failed optional node (``present``: the nodes not pruned)."""
        boundary = {node}
        queue = [node]
        while queue:
            for frm, optional in self.into[queue.pop()]:
                if not optional and frm not in boundary and frm in present:
                    boundary.add(frm)
                    queue.append(frm)
        deps = set(boundary)
        queue = list(boundary)
        while queue:
            for to, _ in self.out[queue.pop()].values():
                if to is not None and to in present and to not in boundary and to not in deps:
                    deps.add(to)
                    queue.append(to)
        changed = True
        while changed and deps:
            changed = False
            for dep in list(deps):
                if dep not in boundary and any(frm not in deps and frm in present for frm, _ in self.into[dep]):
                    deps.discard(dep)
                    changed = True
        return deps


def plan(lockfile: bytes | None, package_json: bytes | None, platform: Platform, npmrc_keys: Iterable[str] = ()) -> Layout:
    """The layout of ``npm ci --ignore-scripts`` for this lockfile, or why it must be npm's."""
    layout = Layout()
    try:
        data = json.loads(lockfile or b"")
        manifest = json.loads(package_json or b"{}")
    except ValueError:
        layout.fallback.append("package-lock.json or package.json is not valid JSON")
        return layout
    if not isinstance(data, dict) or not isinstance(data.get("packages"), dict) or int(data.get("lockfileVersion") or 1) < 2:
        layout.fallback.append("the lockfile is not lockfileVersion 2 or 3")
        return layout
    if not isinstance(manifest, dict):
        manifest = {}
    for key in sorted(set(npmrc_keys) & set(LAYOUT_NPMRC_KEYS)):
        layout.fallback.append(f".npmrc sets {key}")
    packages: dict[str, dict[str, Any]] = {k: v for k, v in data["packages"].items() if isinstance(v, dict)}
    root = packages.get("", {})
    layout.name = str(manifest.get("name") or root.get("name") or "")
    layout.version = manifest.get("version") if isinstance(manifest.get("version"), str) else None
    for field_name in DEP_FIELDS:
        if (manifest.get(field_name) or {}) != (root.get(field_name) or {}):
            layout.fallback.append(f"package.json's {field_name} differ from the lockfile's")
    for field_name in ("workspaces", "bundleDependencies", "bundledDependencies"):
        if manifest.get(field_name) or root.get(field_name):
            layout.fallback.append(f"package.json has {field_name}")
    entries: dict[str, Entry] = {}
    bundled: set[str] = set()
    for path, raw in packages.items():
        if not path:
            continue
        if raw.get("inBundle") or raw.get("bundled"):
            bundled.add(path)  # comes inside its bundler's tarball: only a problem if that one is installed
            continue
        reason = _unsupported(path, raw)
        if reason:
            layout.fallback.append(f"{path}: {reason}")
            continue
        name = raw.get("name") if isinstance(raw.get("name"), str) else path.rsplit("node_modules/", 1)[-1]
        integrity = str(raw["integrity"])
        entries[path] = Entry(path, name, str(raw["version"]), integrity, package_key(integrity) or "",
                              normalise_bins(raw.get("bin"), name), raw)
    if layout.fallback:
        return layout
    graph = _Graph(packages)
    installed = graph.reachable() - {""}
    for path in packages:
        if path in installed and not packages[path].get("optional") and not fits(packages[path], platform):
            layout.fallback.append(f"{path}: not for this platform and not optional (npm refuses it)")
    failed = [p for p in packages if p in installed and packages[p].get("optional") and not fits(packages[p], platform)]
    removed: set[str] = set()
    for path in failed:
        removed |= graph.optional_set(path, installed | {""})
    if "" in removed:
        layout.fallback.append("an optional package's failure would remove the app itself")
        return layout
    for path in sorted((installed - removed) & bundled):
        if packages[path].get("bin"):
            layout.fallback.append(f"{path}: a bundled dependency with bins")
    if layout.fallback:
        return layout
    layout.skipped = [p for p in packages if p in installed and p in removed]
    layout.entries = [entries[p] for p in packages if p in installed and p not in removed and p not in bundled]
    layout.listed = [(p, packages[p]) for p in packages if p and p in installed and p not in removed]
    return layout


def _unsupported(path: str, raw: Mapping[str, Any]) -> str:
    """Why an entry is not a registry package the package store can hold ("" when it is)."""
    parts = path.split("/")
    if (parts[0] != "node_modules" or len(parts) < 2 or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts)
            or "/node_modules/node_modules" in path or parts[-1] == "node_modules"):
        return "not an installed package path"
    if raw.get("link"):
        return "a link (workspace or file: dependency)"
    version = raw.get("version")
    if not isinstance(version, str) or not version or ":" in version:
        return f"version {version!r} is not a registry version"
    integrity = raw.get("integrity")
    if not isinstance(integrity, str) or package_key(integrity) is None:
        return "no sha512 integrity"
    resolved = raw.get("resolved")
    name = raw.get("name") if isinstance(raw.get("name"), str) else path.rsplit("node_modules/", 1)[-1]
    if isinstance(resolved, str) and resolved and not (_is_web(resolved) and _registry_tarball(resolved, name, version)):
        return f"resolved from {resolved[:120]}, not a registry tarball"
    return ""
