"""Blobs for callers: find, upload and read, each answer scoped to the caller's tenant.

A tenant is told a blob is missing unless it uploaded it or its builds
produced it, even when another tenant's copy is in the store: answers are no
oracle for someone else's content. Uploads are re-hashed before they are kept.
Every byte read is re-hashed on the way out (BLAKE3 runs at GB/s): a blob
corrupted on disk ends the read with ``DataLoss`` instead of passing for its
digest, and a small blob is checked before its first byte leaves.

Every file operation (a chunk's write and hash, opening and reading a blob)
runs in a worker thread: a 200 MB upload never stalls the hits that share the
event loop. ``find_missing`` blocks (a check and a stat per digest): callers
run it in a worker thread.

This module knows nothing of the API: errors are the domain's
(``InvalidRequest``, ``NotFound``, ``DataLoss``). It must never keep a blob
that does not hash to its announced digest, never tell a tenant about a blob
it does not own, and never read or write a blob on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import BinaryIO

from cached.digest import Digest, Hasher
from cached.errors import DataLoss, InvalidRequest, NotFound
from cached.store import Store

READ_CHUNK = 1 << 20
VERIFY_FIRST_BYTES = 16 << 20
MAX_BLOB_BYTES = 2 << 30
HEX = frozenset("0123456789abcdef")

log = logging.getLogger("cached.content")


class ContentStore:
    """The store's blobs as tenants see them."""

    def __init__(self, store: Store, max_blob_bytes: int = MAX_BLOB_BYTES) -> None:
        self._store = store
        self._blobs = store.blobs
        self._hasher = store.hasher
        self._tmp_dir = str(store.root / "tmp")
        self.max_blob_bytes = max_blob_bytes

    @property
    def function(self) -> str:
        return self._hasher.function

    def check(self, digest: Digest) -> Digest:
        """The digest, when it is one of this daemon's function and well formed; else InvalidRequest."""
        if digest.function != self._hasher.function:
            raise InvalidRequest("digest", f"function {digest.function}; this daemon uses {self._hasher.function}")
        if len(digest.hash) not in (32, 64) or not HEX.issuperset(digest.hash) or digest.size < 0:
            raise InvalidRequest("digest", f"{digest} is not a valid digest")
        return digest

    # -- find ------------------------------------------------------------------------
    def find_missing(self, tenant: str, digests: Iterable[Digest]) -> list[Digest]:
        """Of ``digests`` (checked, in order), those the tenant has not stored. Blocking: a worker thread."""
        checked = [self.check(d) for d in digests]
        owned = self._blobs.owned_by(tenant, checked)
        present = set(owned) - set(self._blobs.missing(list(owned)))
        return [d for d in checked if d not in present]

    # -- upload ----------------------------------------------------------------------
    def upload(self, tenant: str) -> "Upload":
        """A session for one stream of blobs of ``tenant``; use it as ``async with``."""
        return Upload(self, tenant)

    async def _receive(self, digest: Digest | None) -> "_Incoming":
        return await asyncio.to_thread(_Incoming, self._tmp_dir, self._hasher, digest)

    async def _keep(self, tenant: str, incoming: "_Incoming") -> Digest:
        """Keeps a received blob when it hashes to its announced digest (any, when none was); the tenant owns it before this returns."""
        try:
            actual = await asyncio.to_thread(incoming.close)  # hashed as it came: no second read
            if incoming.expected is not None and actual != incoming.expected:
                raise InvalidRequest("data", f"content hashes to {actual}, not the announced {incoming.expected}; nothing was stored")
            digest = await asyncio.to_thread(self._blobs.put_file, incoming.name, False, move=True)
            # Only once the tenant owns it: a FindMissingBlobs or a Build right after must see it.
            await asyncio.wrap_future(self._blobs.note_owner(tenant, [digest]))
            return digest
        finally:
            await asyncio.to_thread(incoming.discard)

    # -- read ------------------------------------------------------------------------
    def _readable(self, tenant: str, digest: Digest) -> bool:
        return bool(self._blobs.owned_by(tenant, [digest])) and self._blobs.has(digest)

    async def read(self, tenant: str, digest: Digest) -> AsyncIterator[bytes]:
        """The blob's bytes, in chunks of at most READ_CHUNK.

        Raises InvalidRequest (a bad digest), NotFound (not the tenant's, or not
        in the store) before the first chunk, and DataLoss when the bytes do not
        hash to the digest: before the first chunk for a blob of up to
        VERIFY_FIRST_BYTES, after the last for a bigger one.
        """
        digest = self.check(digest)
        if not await asyncio.to_thread(self._readable, tenant, digest):
            raise NotFound(f"blob {digest} is not in the store for tenant {tenant}")
        self._store.lease([digest])
        hasher = self._hasher.new()
        with await asyncio.to_thread(self._blobs.open, digest) as f:
            if digest.size <= VERIFY_FIRST_BYTES:
                data = await asyncio.to_thread(_read_hashed, f, hasher, -1)
                if hasher.hexdigest() != digest.hash or len(data) != digest.size:
                    raise _corrupt(digest)
                for offset in range(0, len(data), READ_CHUNK):
                    yield data[offset:offset + READ_CHUNK]
                return
            size = 0
            while data := await asyncio.to_thread(_read_hashed, f, hasher, READ_CHUNK):
                size += len(data)
                yield data
        if hasher.hexdigest() != digest.hash or size != digest.size:
            raise _corrupt(digest)


class Upload:
    """One stream of blobs for one tenant: ``start`` each blob, ``write`` its bytes, ``commit`` at the end.

    Starting a blob keeps the one before it. A blob is kept only when its bytes
    hash to the digest it was announced with; one started with ``None`` (the
    sender did not hash it) is kept under the digest its bytes hash to, at most
    ``max_blob_bytes`` of them. Whatever is left unkept when the session closes
    is discarded.
    """

    def __init__(self, content: ContentStore, tenant: str) -> None:
        self._content = content
        self.tenant = tenant
        self.stored: list[Digest] = []
        self._incoming: _Incoming | None = None

    async def start(self, digest: Digest | None) -> None:
        """Keeps the blob before it (if any), then receives ``digest``'s bytes (``None``: a blob of unknown digest)."""
        await self._keep_current()
        if digest is not None:
            digest = self._content.check(digest)
            if digest.size > self._content.max_blob_bytes:
                raise InvalidRequest("digest", f"blob of {digest.size} bytes; at most {self._content.max_blob_bytes}")
        self._incoming = await self._content._receive(digest)

    async def write(self, data: bytes) -> None:
        """More bytes of the blob started last (an empty write only checks that one was started)."""
        incoming = self._incoming
        if incoming is None:
            raise InvalidRequest("digest", "the first chunk of each blob must carry its digest")
        if not data:
            return
        if incoming.expected is None:
            if incoming.size + len(data) > self._content.max_blob_bytes:
                raise InvalidRequest("data", f"blob of more than {self._content.max_blob_bytes} bytes")
        elif incoming.size + len(data) > incoming.expected.size:
            raise InvalidRequest("data", f"more bytes than the {incoming.expected.size} the digest announced")
        await asyncio.to_thread(incoming.write, data)

    async def commit(self) -> list[Digest]:
        """Keeps the last blob; returns every blob kept, in order."""
        await self._keep_current()
        return list(self.stored)

    async def discard(self) -> None:
        """Drops the blob being received, if any (those already kept stay)."""
        incoming, self._incoming = self._incoming, None
        if incoming is not None:
            await asyncio.to_thread(incoming.discard)

    async def _keep_current(self) -> None:
        incoming, self._incoming = self._incoming, None
        if incoming is not None:
            self.stored.append(await self._content._keep(self.tenant, incoming))

    async def __aenter__(self) -> "Upload":
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        await self.discard()


class _Incoming:
    """One blob being received: written to ``tmp/`` and hashed as it comes (call it from a worker thread)."""

    def __init__(self, tmp_dir: str, hasher: Hasher, expected: Digest | None) -> None:
        self.expected = expected
        self.function = hasher.function
        self.hash = hasher.new()
        self.size = 0
        self.file = tempfile.NamedTemporaryFile(dir=tmp_dir, prefix="upload-", delete=False)  # noqa: SIM115 - closed by close()
        self.name = self.file.name

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.hash.update(data)
        self.size += len(data)

    def close(self) -> Digest:
        """Closes the file; returns the digest of what was received."""
        self.file.close()
        return Digest(self.hash.hexdigest(), self.size, self.function)

    def discard(self) -> None:
        self.file.close()
        try:
            os.unlink(self.name)
        except FileNotFoundError:
            pass


def _corrupt(digest: Digest) -> DataLoss:
    log.error("blob content does not match its digest", extra={"digest": str(digest)})
    return DataLoss(f"blob {digest} is corrupt in the store; run `cached verify --repair`, then build again")


def _read_hashed(f: BinaryIO, hasher, n: int) -> bytes:  # type: ignore[no-untyped-def]
    """Reads up to ``n`` bytes (all with -1) and hashes them: one worker-thread call."""
    data = f.read(n)
    hasher.update(data)
    return data
