"""Signed records: sealing a value for the bucket, and opening one read back.

The signature covers a domain string, the kind, the key and the value's
BLAKE3 digest, each length-prefixed so no two different tuples sign the same
bytes. The domain keeps these signatures from ever being valid for anything
else the same key might sign; kind and key bind a record to where it was
written, so an object copied to another tenant's or another key's name no
longer verifies. The value travels beside its digest, and is checked against
it before the signature is.

Opening never raises to its caller's caller: ``open_record`` raises
``Rejected`` with a short reason, which the tier turns into a miss, a warning
and a count of ``rejected[reason]``.
"""

from __future__ import annotations

import struct
import time

from google.protobuf.message import DecodeError

from cached.digest import BLAKE3, Digest, Hasher
from cached.remote.signing import Keyring
from cached.v1 import remote_pb2

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

DOMAIN = b"cached.v1.remote.record"
VERSION = 1
_HASHER = Hasher(BLAKE3)

# Why a record or a blob was refused (the label of ``rejected``).
MALFORMED = "malformed"
VERSION_UNKNOWN = "version"
UNSIGNED = "unsigned"
UNKNOWN_KEY = "unknown_key"
KIND_MISMATCH = "kind_mismatch"
KEY_MISMATCH = "key_mismatch"
VALUE_MISMATCH = "value_mismatch"
BAD_SIGNATURE = "bad_signature"
TOO_LARGE = "too_large"
DIGEST_MISMATCH = "digest_mismatch"   # a blob whose body does not hash to its name
SIZE_MISMATCH = "size_mismatch"       # a blob whose length is not its digest's size
REASONS = (MALFORMED, VERSION_UNKNOWN, UNSIGNED, UNKNOWN_KEY, KIND_MISMATCH, KEY_MISMATCH, VALUE_MISMATCH,
           BAD_SIGNATURE, TOO_LARGE, DIGEST_MISMATCH, SIZE_MISMATCH)


class Rejected(Exception):
    """A record or blob that must not be used; ``reason`` is one of REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def _field(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def signed_message(kind: str, key: str, digest: Digest) -> bytes:
    """The bytes an Ed25519 signature covers."""
    return DOMAIN + b"\0" + _field(kind.encode()) + _field(key.encode()) + _field(str(digest).encode())


def seal(signer: Ed25519PrivateKey, kid: str, kind: str, key: str, value: bytes, now_ms: int | None = None) -> bytes:
    """The serialized SignedRecord of ``value`` at ``kind``/``key``."""
    digest = _HASHER.bytes(value)
    record = remote_pb2.SignedRecord(
        version=VERSION, kind=kind, key=key, value_digest=digest.to_proto(), value=value, key_id=kid,
        signature=signer.sign(signed_message(kind, key, digest)),
        signed_unix_ms=int(time.time() * 1000) if now_ms is None else now_ms,
    )
    return record.SerializeToString(deterministic=True)


def open_record(data: bytes, kind: str, key: str, keyring: Keyring) -> bytes:
    """The value of a record read from ``kind``/``key`` when a trusted key signed it there; Rejected otherwise."""
    record = remote_pb2.SignedRecord()
    try:
        record.ParseFromString(data)
    except DecodeError:
        raise Rejected(MALFORMED, "not a SignedRecord") from None
    if record.version != VERSION:
        raise Rejected(VERSION_UNKNOWN, f"envelope version {record.version}, this daemon reads {VERSION}")
    if not record.signature or not record.key_id:
        raise Rejected(UNSIGNED)
    if record.kind != kind:
        raise Rejected(KIND_MISMATCH, f"written as kind {record.kind[:80]!r}")
    if record.key != key:
        raise Rejected(KEY_MISMATCH, f"written as key {record.key[:80]!r}")
    if record.key_id not in keyring:
        raise Rejected(UNKNOWN_KEY, f"signed by key {record.key_id[:64]!r}, not a trusted one")
    try:
        declared = Digest.from_proto(record.value_digest, "value_digest")
    except ValueError:
        raise Rejected(MALFORMED, "unknown digest function") from None
    if declared.function != BLAKE3 or _HASHER.bytes(record.value) != declared:
        raise Rejected(VALUE_MISMATCH, "the value does not hash to its digest")
    if not keyring.verify(record.key_id, record.signature, signed_message(kind, key, declared)):
        raise Rejected(BAD_SIGNATURE)
    return record.value


def check_blob(digest: Digest, body: bytes) -> bytes:
    """``body`` when it is the blob ``digest`` names; Rejected otherwise."""
    if len(body) != digest.size:
        raise Rejected(SIZE_MISMATCH, f"{len(body)} bytes, the digest says {digest.size}")
    if Hasher(digest.function).bytes(body) != digest:
        raise Rejected(DIGEST_MISMATCH)
    return body
