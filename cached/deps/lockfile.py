"""The lockfile an install runs on: packages come from the configured registry, never from where the lockfile says.

A lockfile's ``resolved`` URLs are the tenant's input: followed, one would
make the daemon's npm fetch whatever a lockfile names (a port of the host, a
metadata address, the LAN). So before ``npm ci`` the install's copy of the
lockfile is rewritten:

- an entry resolved to the configured registry (same scheme, host, port,
  under its path) is kept as it is: npm fetches that tarball from the
  registry, and checks it against the entry's ``integrity``;
- an entry resolved to a registry tarball elsewhere
  (``.../<name>/-/<name>-<version>.tgz`` on another host, e.g. a lockfile
  made against another registry or planted to point at a host port) is
  resolved to the same tarball of the configured registry instead
  (``<registry>/<name>/-/<name>-<version>.tgz``, the path npm's own
  ``replace-registry-host`` keeps), which npm checks against the entry's
  ``integrity``. npm installs the same ``node_modules`` whether ``resolved``
  was there, elsewhere or absent (``.package-lock.json`` included). Dropping
  ``resolved`` instead would also keep npm at the registry, but makes it
  fetch each package's packument first, and with ``--prefer-offline`` a
  cached packument older than the version asked for fails the install;
- an entry with an ``integrity`` and no ``resolved`` (lockfiles written with
  ``omit-lockfile-registry-resolved``) is resolved to the registry's tarball
  the same way, for the same two reasons;
- ``file:`` and ``link`` entries (inside the install's scratch dir, which
  holds only the files of the deps key) are kept;
- anything else (a git dependency, a tarball URL that is not the registry's)
  is refused before npm runs, naming the entries: the install's sandbox
  reaches only the registry, so npm could not fetch them anyway.

An app's ``.npmrc`` may name registries of its own (``registry=``,
``@scope:registry=``) that request validation accepted: the daemon's or one
the operator allowlisted (``cached/request/npmrc.py``), which the install's
egress reaches too. Given as ``registries`` (scope or "" -> URL), each is the
registry of its entries: ``@scope/...`` entries belong to their scope's, the
others to the app's ``registry=`` when it has one, else to the daemon's. An
entry resolved to any of these registries is kept; an entry rewritten or
given a ``resolved`` gets its own registry's tarball.

The deps key is made of the lockfile as sent; only the install's copy changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from cached.errors import PreconditionFailed

MAX_NAMED = 5


class ForeignSource(PreconditionFailed):
    """Lockfile entries that only a fetch from outside the registry could install. -> FAILED_PRECONDITION"""

    def __init__(self, entries: list[tuple[str, str]], registry: str, others: tuple[str, ...] = ()) -> None:
        named = "; ".join(f"{key} from {source[:200]}" for key, source in entries[:MAX_NAMED])
        more = f" (and {len(entries) - MAX_NAMED} more)" if len(entries) > MAX_NAMED else ""
        reach = f"the registry ({registry})" if not others else f"the registries ({', '.join((registry, *others))})"
        super().__init__(
            f"package-lock.json names packages that are not fetched from the registry: {named}{more}. "
            f"Installs reach only {reach}; use a version published there, or put the "
            "package's tarball in the app under patches/ and depend on it as file:patches/<name>.tgz. Nothing was installed."
        )
        self.entries = entries


class _Registry:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host = (parts.hostname or "").lower()
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.path = parts.path if parts.path.endswith("/") else parts.path + "/"
        self.url = url

    def tarball(self, name: str, version: str) -> str:
        return self.url.rstrip("/") + "/" + _tarball_path(name, version)

    def holds(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return False
        return (
            parts.scheme == self.scheme and (parts.hostname or "").lower() == self.host and port == self.port
            and not parts.username and not parts.password and parts.path.startswith(self.path)
        )


def _is_web(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def _is_local(source: str) -> bool:
    """``file:`` or a relative path (a ``link`` entry's): inside the install's own directory."""
    return source.startswith("file:") or ":" not in source.split("/", 1)[0]


def _tarball_path(name: str, version: str) -> str:
    return f"{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"


def _registry_tarball(url: str, name: str, version: str) -> bool:
    """Whether ``url`` has the shape of a registry's tarball of ``name@version``."""
    if not name or not version:
        return False
    try:
        path = unquote(urlsplit(url).path)
    except ValueError:
        return False
    return path.endswith("/" + _tarball_path(name, version))


def _packages(data: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(label, package name, entry) of every installable entry: v2/v3 ``packages``,
    or a v1 lockfile's ``dependencies`` (npm reads those only without ``packages``)."""
    packages = data.get("packages")
    if isinstance(packages, dict):
        for key, entry in packages.items():
            if key and isinstance(entry, dict) and not entry.get("link"):
                yield key, str(entry.get("name") or key.rsplit("node_modules/", 1)[-1]), entry
        return

    def walk(deps: Any, prefix: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        if not isinstance(deps, dict):
            return
        for name, entry in deps.items():
            if isinstance(entry, dict):
                yield f"{prefix}{name}", str(name), entry
                yield from walk(entry.get("dependencies"), f"{prefix}{name} > ")

    yield from walk(data.get("dependencies"), "dependencies: ")


class _Registries:
    """The registries of one install: the daemon's and the app's accepted ones, by scope."""

    def __init__(self, registry: str, registries: Mapping[str, str]) -> None:
        self.default = _Registry(registries.get("") or registry)
        self.scoped = {scope: _Registry(url) for scope, url in registries.items() if scope}
        self.all = [_Registry(registry), self.default, *self.scoped.values()]

    def of(self, name: str) -> _Registry:
        """The registry npm fetches ``name`` from: its scope's, else the default."""
        scope = name.split("/", 1)[0].lower() if name.startswith("@") and "/" in name else ""
        return self.scoped.get(scope, self.default)

    def holds(self, url: str) -> bool:
        return any(r.holds(url) for r in self.all)

    def others(self, registry: str) -> tuple[str, ...]:
        """The URLs beyond ``registry``, for a refusal's words."""
        return tuple(dict.fromkeys(r.url for r in self.all if r.url != registry))


def registry_only(lockfile: bytes, registry: str, *, registries: Mapping[str, str] | None = None) -> bytes:
    """The lockfile ``npm ci`` runs on (see the module docstring); ForeignSource
    when an entry can only come from elsewhere. An unreadable lockfile is
    returned unchanged: npm says what is wrong with it.

    ``registries``: the app's accepted registry lines (``npmrc.tenant_registries``,
    scope or "" -> URL); without them every entry belongs to ``registry``."""
    try:
        data = json.loads(lockfile)
    except ValueError:
        return lockfile
    if not isinstance(data, dict):
        return lockfile
    regs = _Registries(registry, registries or {})
    changed = False
    foreign: list[tuple[str, str]] = []
    for label, name, entry in _packages(data):
        version = entry.get("version")
        version = version if isinstance(version, str) else ""
        resolved = entry.get("resolved")
        alias = version.startswith("npm:")
        if version and ":" in version and not alias and not _is_local(version):
            foreign.append((label, version))  # v1: the version is the source (a git or tarball URL)
            continue
        if not isinstance(resolved, str) or not resolved:
            if version and not alias and entry.get("integrity") and not entry.get("inBundle") and not entry.get("bundled"):
                # npm would look the tarball up in the package's packument first, and with
                # --prefer-offline a cached packument older than this version fails the install.
                entry["resolved"] = regs.of(name).tarball(name, version)
                changed = True
            continue
        if _is_web(resolved):
            if regs.holds(resolved):
                continue
            real_name, real_version = name, version
            if alias:  # v1 alias: "npm:<name>@<version>"
                real_name, _, real_version = version[4:].rpartition("@")
            if _registry_tarball(resolved, real_name, real_version):
                entry["resolved"] = regs.of(real_name).tarball(real_name, real_version)
                changed = True
                continue
            foreign.append((label, resolved))
        elif not _is_local(resolved):
            foreign.append((label, resolved))  # git+ssh:, git+https:, github: ...
    if foreign:
        raise ForeignSource(foreign, registry, regs.others(registry))
    if not changed:
        return lockfile
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()
