"""Subresource integrity strings (``sha512-<base64>``), the package store's keys.

Only sha512 names a package here: a weaker hash (sha1, which npm still
accepts for old packages) would let two different tarballs share a key, so
an entry without a sha512 goes the ``npm ci`` way instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib


class IntegrityMismatch(ValueError):
    """A tarball whose bytes are not the ones its lockfile entry names: nothing of it is stored."""


def sha512_of(integrity: str) -> bytes | None:
    """The sha512 digest an SRI string names (several hashes may be listed), or None."""
    for part in integrity.split():
        algorithm, _, value = part.partition("-")
        if algorithm != "sha512":
            continue
        value = value.split("?", 1)[0]  # SRI options
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
        return raw if len(raw) == 64 else None
    return None


def package_key(integrity: str) -> str | None:
    """The package store's key: the sha512 as lowercase hex."""
    raw = sha512_of(integrity)
    return raw.hex() if raw is not None else None


def check(data: bytes, key: str, what: str) -> None:
    if hashlib.sha512(data).hexdigest() != key:
        raise IntegrityMismatch(f"the tarball of {what} does not match its lockfile integrity; nothing of it was stored")


def sri_path(key: str) -> str:
    """Where npm's cache (cacache) keeps content of that sha512: ``content-v2/sha512/ab/cd/ef...``."""
    return f"content-v2/sha512/{key[:2]}/{key[2:4]}/{key[4:]}"
