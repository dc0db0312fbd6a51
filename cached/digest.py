"""Content addresses: which hash function, how files are hashed, how a digest is written down.

BLAKE3 is the default because the store is shared by tenants whose builds run
code they wrote: a cryptographic hash means nobody can craft a file that
collides with another tenant's. xxh3_128 is offered for stores that serve one
trust domain; callers that know several tenants share the store must refuse it
(see ``require_cryptographic``). The function is part of every digest, so keys
made with one can never be read as keys made with the other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import blake3
import xxhash

from cached.errors import InvalidRequest
from cached.v1 import tree_pb2

CHUNK = 1 << 20  # streaming hashes read 1 MiB at a time, whatever the file size

BLAKE3 = "blake3"
XXH3_128 = "xxh3_128"
FUNCTIONS = (BLAKE3, XXH3_128)


class _Hash(Protocol):
    def update(self, data: bytes, /) -> object: ...
    def hexdigest(self) -> str: ...


def _new(function: str) -> _Hash:
    if function == BLAKE3:
        return blake3.blake3()
    if function == XXH3_128:
        return xxhash.xxh3_128()
    raise ValueError(f"unknown digest function {function!r}; choose one of {', '.join(FUNCTIONS)}")


@dataclass(frozen=True, slots=True, order=True)
class Digest:
    """``(function, hash, size)``: the identity of a blob."""

    hash: str
    size: int
    function: str = BLAKE3

    def __str__(self) -> str:
        return f"{self.function}:{self.hash}/{self.size}"

    @property
    def key(self) -> bytes:
        """The LMDB key form: the function is in it, so two functions never collide."""
        return f"{self.function}:{self.hash}:{self.size}".encode()

    @classmethod
    def from_key(cls, key: bytes) -> "Digest":
        function, hash_, size = key.decode().split(":")
        return cls(hash_, int(size), function)

    @classmethod
    def parse(cls, text: str) -> "Digest":
        """Reads the ``str()`` form back: ``blake3:<hex>/<size>``."""
        function, _, rest = text.partition(":")
        hash_, _, size = rest.partition("/")
        if function not in FUNCTIONS or not hash_ or not size.isdigit():
            raise ValueError(f"not a digest: {text!r} (expected function:hex/size)")
        return cls(hash_.lower(), int(size), function)

    def to_proto(self) -> tree_pb2.Digest:
        return tree_pb2.Digest(hash=self.hash, size=self.size, function=_TO_PROTO[self.function])

    @classmethod
    def from_proto(cls, message: tree_pb2.Digest, field: str = "digest") -> "Digest":
        """Raises UnknownDigestFunction (INVALID_ARGUMENT) naming ``field`` for an enum value this daemon does not know."""
        function = _FROM_PROTO.get(message.function)
        if function is None:
            raise UnknownDigestFunction(f"{field}.function", message.function)
        return cls(message.hash.lower(), message.size, function)


class UnknownDigestFunction(InvalidRequest, ValueError):
    """A digest whose ``function`` enum value is none of ``tree_pb2.DigestFunction``'s."""

    def __init__(self, field: str, value: int) -> None:
        known = ", ".join(f"{tree_pb2.DigestFunction.Name(n)} ({n})" for n in sorted(_FROM_PROTO))
        super().__init__(field, f"unknown digest function {value}; known functions: {known} (0 is read as BLAKE3)")
        self.value = value


_TO_PROTO = {BLAKE3: tree_pb2.BLAKE3, XXH3_128: tree_pb2.XXH3_128}
_FROM_PROTO = {
    tree_pb2.DIGEST_FUNCTION_UNSPECIFIED: BLAKE3,
    tree_pb2.BLAKE3: BLAKE3,
    tree_pb2.XXH3_128: XXH3_128,
}


class Hasher:
    """Makes digests with one function. Streams files, so memory is bounded."""

    def __init__(self, function: str = BLAKE3) -> None:
        _new(function)  # validates the name early
        self.function = function

    def new(self) -> _Hash:
        return _new(self.function)

    def bytes(self, data: bytes) -> Digest:
        h = _new(self.function)
        h.update(data)
        return Digest(h.hexdigest(), len(data), self.function)

    def stream(self, reader: BinaryIO) -> Digest:
        h = _new(self.function)
        size = 0
        while chunk := reader.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
        return Digest(h.hexdigest(), size, self.function)

    def file(self, path: str | os.PathLike[str]) -> Digest:
        with open(path, "rb", buffering=0) as f:
            return self.stream(f)


def fast_digest(data: bytes) -> str:
    """xxh3_128 hex: change detection only (workspace reconciling), never a store key."""
    return xxhash.xxh3_128_hexdigest(data)


def fast_file_digest(path: Path) -> str:
    h = xxhash.xxh3_128()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def require_cryptographic(function: str, why: str) -> None:
    """Refuses a non-cryptographic digest where tenants could collide on purpose."""
    if function != BLAKE3:
        raise ValueError(f"digest function {function} is not collision-resistant; {why} needs {BLAKE3}")
