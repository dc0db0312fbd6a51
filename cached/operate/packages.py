"""Naming one package (``NAME[@VERSION]``) and finding it in the stored dependency trees.

Shared by ``purge --package`` and ``explain --package``. A tree is searched by
its ``DepsRecord.refs``, which carry each entry's real name, so an alias
(``"node_modules/pad": {"name": "left-pad"}``) is found under ``left-pad``.
A tree recorded before refs existed has only its ``packages`` map (path ->
version); its names are read from the paths, so it is still found, except
under an alias.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass

from cached.store import RootEntry, Store
from cached.v1 import records_pb2

# npm's rules for a name (old names may hold capitals), and semver 2.0 for a version: what a lockfile holds.
_PART = r"[A-Za-z0-9][A-Za-z0-9._~-]*"
NAME = re.compile(rf"^(?:@{_PART}/)?{_PART}$")
VERSION = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$")
MAX_NAME = 214
FORM = "NAME@VERSION, e.g. left-pad@1.3.0 or @scope/name@2.0.0"
FORM_ANY = "NAME or NAME@VERSION, e.g. left-pad, left-pad@1.3.0 or @scope/name@2.0.0"


@dataclass(frozen=True)
class PackageSelector:
    """One package by its real name, and one version of it (``version=""``: every version)."""

    name: str
    version: str = ""

    @classmethod
    def parse(cls, text: str, *, version_required: bool) -> "PackageSelector":
        """``NAME@VERSION`` (or ``NAME`` when the version is optional); raises ValueError naming the form."""
        form = FORM if version_required else FORM_ANY
        text = text.strip()
        at = text.rfind("@")
        name, version = (text[:at], text[at + 1:]) if at > 0 else (text, "")
        if not name:
            raise ValueError(f"--package {text!r}: the name is empty; use {form}")
        if len(name) > MAX_NAME or not NAME.match(name):
            raise ValueError(f"--package {text!r}: {name!r} is not a package name; use {form}")
        if at > 0 and not version:
            raise ValueError(f"--package {text!r}: the version after '@' is empty; use {form}")
        if version_required and not version:
            raise ValueError(f"--package {text!r}: give the version too; use {form}")
        if version and not VERSION.match(version):
            raise ValueError(f"--package {text!r}: {version!r} is not an exact version (like 1.3.0 or 2.0.0-rc.1); use {form}")
        return cls(name, version)

    def matches(self, name: str, version: str) -> bool:
        return name == self.name and (not self.version or version == self.version)

    def __str__(self) -> str:
        return f"{self.name}@{self.version}" if self.version else self.name


def tree_refs(record: records_pb2.DepsRecord) -> list[records_pb2.PackageRef]:
    """Every package a tree holds: its refs, or for a tree recorded before them, its packages map."""
    if record.refs:
        return list(record.refs)
    return [records_pb2.PackageRef(path=path, name=path.rsplit("node_modules/", 1)[-1], version=version)
            for path, version in record.packages.items()]


def matching_refs(record: records_pb2.DepsRecord, selector: PackageSelector) -> list[records_pb2.PackageRef]:
    return [r for r in tree_refs(record) if selector.matches(r.name, r.version)]


def integrity_key(integrity: str) -> bytes | None:
    """The package store's key (sha512 as lowercase hex) of a lockfile's integrity, when it has a sha512."""
    for part in integrity.split():
        algorithm, _, encoded = part.partition("-")
        if algorithm != "sha512":
            continue
        try:
            raw = base64.b64decode(encoded.split("?", 1)[0], validate=True)
        except (binascii.Error, ValueError):
            return None
        return raw.hex().encode() if len(raw) == 64 else None
    return None


@dataclass(frozen=True)
class TreeMatch:
    """A stored dependency tree holding the package, and where."""

    entry: RootEntry
    refs: tuple[records_pb2.PackageRef, ...]

    @property
    def deps_key(self) -> str:
        return self.entry.key.decode()


def matching_trees(store: Store, selector: PackageSelector) -> Iterator[TreeMatch]:
    """The stored trees that hold the package (reads a snapshot of the deps roots)."""
    for entry in store.deps.iter():
        try:
            record = records_pb2.DepsRecord.FromString(entry.value)
        except Exception:  # noqa: BLE001 - an unreadable record is verify's business, not a match
            continue
        refs = matching_refs(record, selector)
        if refs:
            yield TreeMatch(entry, tuple(refs))


def matching_package_records(store: Store, selector: PackageSelector) -> Iterator[tuple[RootEntry, records_pb2.PackageRecord]]:
    """The package store's records of the package (by the name and version they hold)."""
    for entry in store.packages.iter():
        try:
            record = records_pb2.PackageRecord.FromString(entry.value)
        except Exception:  # noqa: BLE001 - as above
            continue
        if selector.matches(record.name, record.version):
            yield entry, record


def version_order(version: str) -> tuple[object, ...]:
    """Sorts versions as numbers (1.10.0 after 1.9.0), a pre-release before its release."""
    core, _, pre = version.partition("+")[0].partition("-")
    numbers = tuple(int(p) if p.isdigit() else -1 for p in core.split("."))
    return (numbers, 0 if pre else 1, pre)
