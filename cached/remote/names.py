"""Where each entry lives in the bucket, and the names allowed there.

Layout under the configured prefix (``PREFIX/`` or nothing)::

    cas/<function>/<hash>     blobs, by content address (BLAKE3 only)
    ac/<tenant>/<key>         action results, one namespace per tenant
    deps/<key>                dependency manifests
    packages/<key>            package records
    resolutions/<key>         lockfile resolutions

Tenants and keys become path segments, so they are checked here once: one
segment (no ``/``), no ``..``, printable ASCII from a small set, bounded
length. A name that fails is the caller's bug (``InvalidName``), never
something a bucket can cause; keys with other characters (a scoped package
name, a base64 integrity) must be hashed or hex-encoded by the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cached.digest import BLAKE3, Digest
from cached.remote.errors import InvalidName

RECORD_KINDS = ("deps", "packages", "resolutions")
AC = "ac"
MAX_KEY = 255
MAX_TENANT = 128
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=-]*")
_HEX = re.compile(r"[0-9a-f]+")
_HASH_LENGTH = {BLAKE3: 64}


def check_name(what: str, value: str, max_length: int = MAX_KEY) -> str:
    """Returns ``value`` when it can be one path segment; InvalidName naming ``what`` otherwise."""
    if not isinstance(value, str) or not value:
        raise InvalidName(f"remote {what}: empty")
    if len(value) > max_length:
        raise InvalidName(f"remote {what}: {len(value)} characters, at most {max_length}")
    if ".." in value or not _NAME.fullmatch(value):
        raise InvalidName(f"remote {what} {value[:80]!r}: use letters, digits and . _ : @ + = - (no '/', no '..'), "
                          "starting with a letter or digit")
    return value


def ac_kind(tenant: str) -> str:
    """The record kind of ``tenant``'s action results: ``ac/<tenant>``."""
    return f"{AC}/{check_name('tenant', tenant, MAX_TENANT)}"


def check_kind(kind: str) -> str:
    """Returns ``kind`` when it is ``ac/<tenant>`` or one of RECORD_KINDS; InvalidName otherwise."""
    if kind in RECORD_KINDS:
        return kind
    head, sep, tenant = kind.partition("/") if isinstance(kind, str) else ("", "", "")
    if head == AC and sep:
        return ac_kind(tenant)
    raise InvalidName(f"remote record kind {str(kind)[:80]!r}: use ac/<tenant>, {', '.join(RECORD_KINDS)}")


def blob_supported(digest: Digest) -> bool:
    """Only collision-resistant digests go to a bucket that several daemons trust."""
    return digest.function in _HASH_LENGTH


@dataclass(frozen=True, slots=True)
class Layout:
    """Object names under one prefix ("" is the bucket's root)."""

    prefix: str = ""

    @property
    def root(self) -> str:
        """What every object name starts with: ``PREFIX/`` (or "" for the root)."""
        return f"{self.prefix}/" if self.prefix else ""

    def blob(self, digest: Digest) -> str:
        length = _HASH_LENGTH.get(digest.function)
        if length is None:
            raise InvalidName(f"remote blob {digest}: only {', '.join(_HASH_LENGTH)} digests are shared")
        if len(digest.hash) != length or not _HEX.fullmatch(digest.hash):
            raise InvalidName(f"remote blob {str(digest)[:100]!r}: not a {digest.function} hash")
        return f"{self.root}cas/{digest.function}/{digest.hash}"

    def record(self, kind: str, key: str) -> str:
        return f"{self.root}{check_kind(kind)}/{check_name('key', key)}"
