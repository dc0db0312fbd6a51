"""ContentStore: find, upload and read blobs, each answer scoped to the caller's tenant.

A tenant is told a blob is missing unless it uploaded it or its builds
produced it, even when another tenant's copy is in the store: answers are no
oracle for someone else's content. Uploads are re-hashed before they are kept.

Every file operation (a chunk's write and hash, opening and reading a blob,
the checks of many digests) runs in a worker thread: a 200 MB upload never
stalls the hits that share the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import AsyncIterator

import grpc

from cached.errors import InvalidRequest
from cached.request.spec import Limits
from cached.server.auth import authorize_tenant
from cached.digest import Digest, Hasher
from cached.store import Store
from cached.v1 import cached_pb2, cached_pb2_grpc

READ_CHUNK = 1 << 20
VERIFY_FIRST_BYTES = 16 << 20
log = logging.getLogger("cached.server.content")
MAX_BLOB_BYTES = 2 << 30


class _Incoming:
    """One blob being received: written to ``tmp/`` and hashed as it comes (call it from a worker thread)."""

    def __init__(self, tmp_dir: str, hasher: Hasher, expected: Digest) -> None:
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


class ContentService(cached_pb2_grpc.ContentStoreServicer):
    def __init__(self, store: Store, limits: Limits | None = None) -> None:
        self.store = store
        self.limits = limits or Limits()

    def _digest(self, message) -> Digest:  # type: ignore[no-untyped-def]
        digest = Digest.from_proto(message)
        if digest.function != self.store.hasher.function:
            raise InvalidRequest("digest", f"function {digest.function}; this daemon uses {self.store.hasher.function}")
        if len(digest.hash) not in (32, 64) or any(c not in "0123456789abcdef" for c in digest.hash) or digest.size < 0:
            raise InvalidRequest("digest", f"{digest} is not a valid digest")
        return digest

    async def FindMissingBlobs(self, request: cached_pb2.FindMissingBlobsRequest, context: grpc.aio.ServicerContext) -> cached_pb2.FindMissingBlobsResponse:
        await authorize_tenant(context, request.tenant)
        try:
            tenant = self.limits.check_tenant(request.tenant)
            # Thousands of digests (a watch sends every file) are thousands of checks and stats: a worker thread.
            return await asyncio.to_thread(self._find_missing, tenant, request)
        except InvalidRequest as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
            raise  # not reached: abort raises

    async def UploadBlobs(self, request_iterator: AsyncIterator[cached_pb2.UploadChunk], context: grpc.aio.ServicerContext) -> cached_pb2.UploadBlobsResponse:
        tenant = ""
        stored: list[Digest] = []
        current: Digest | None = None
        handle: _Incoming | None = None
        tmp_dir = str(self.store.root / "tmp")
        try:
            async for chunk in request_iterator:
                if chunk.tenant and not tenant:
                    await authorize_tenant(context, chunk.tenant)  # before a byte of it is kept
                    tenant = self.limits.check_tenant(chunk.tenant)
                if chunk.HasField("digest"):
                    if handle is not None and current is not None:
                        stored.append(await self._finish(tenant, current, handle))
                        handle = None
                    current = self._digest(chunk.digest)
                    if current.size > MAX_BLOB_BYTES:
                        raise InvalidRequest("digest", f"blob of {current.size} bytes; at most {MAX_BLOB_BYTES}")
                    handle = await asyncio.to_thread(_Incoming, tmp_dir, self.store.hasher, current)
                if handle is None or current is None:
                    raise InvalidRequest("digest", "the first chunk of each blob must carry its digest")
                if chunk.data:
                    if handle.size + len(chunk.data) > current.size:
                        raise InvalidRequest("data", f"more bytes than the {current.size} the digest announced")
                    await asyncio.to_thread(handle.write, chunk.data)
            if not tenant:
                raise InvalidRequest("tenant", "the first chunk must name the tenant")
            if handle is not None and current is not None:
                stored.append(await self._finish(tenant, current, handle))
                handle = None
        except InvalidRequest as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        finally:
            if handle is not None:
                await asyncio.to_thread(handle.discard)
        return cached_pb2.UploadBlobsResponse(stored=[d.to_proto() for d in stored])

    async def _finish(self, tenant: str, expected: Digest, handle: _Incoming) -> Digest:
        try:
            actual = await asyncio.to_thread(handle.close)  # hashed as it came: no second read
            if actual != expected:
                raise InvalidRequest("data", f"content hashes to {actual}, not the announced {expected}; nothing was stored")
            digest = await asyncio.to_thread(self.store.blobs.put_file, handle.name, False, move=True)
            # Answer only once the tenant owns it: a FindMissingBlobs or a Build right after must see it.
            await asyncio.wrap_future(self.store.blobs.note_owner(tenant, [digest]))
            return digest
        finally:
            await asyncio.to_thread(handle.discard)

    def _readable(self, tenant: str, digest: Digest) -> bool:
        return bool(self.store.blobs.owned_by(tenant, [digest])) and self.store.blobs.has(digest)

    def _find_missing(self, tenant: str, request: cached_pb2.FindMissingBlobsRequest) -> cached_pb2.FindMissingBlobsResponse:
        """What the tenant has not stored (a worker thread: a check and a stat per digest)."""
        digests = [self._digest(d) for d in request.digests]
        owned = self.store.blobs.owned_by(tenant, digests)
        present = set(owned) - set(self.store.blobs.missing(list(owned)))
        return cached_pb2.FindMissingBlobsResponse(missing=[d.to_proto() for d in digests if d not in present])

    async def ReadBlob(self, request: cached_pb2.ReadBlobRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[cached_pb2.ReadBlobChunk]:
        await authorize_tenant(context, request.tenant)
        try:
            tenant = self.limits.check_tenant(request.tenant)
            digest = self._digest(request.digest)
        except InvalidRequest as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        if not await asyncio.to_thread(self._readable, tenant, digest):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"blob {digest} is not in the store for tenant {tenant}")
        self.store.lease([digest])
        # Every byte is re-hashed on the way out (BLAKE3 runs at GB/s): a blob
        # corrupted on disk ends the stream with DATA_LOSS instead of passing
        # for its digest. A small blob is checked before its first byte leaves.
        hasher = self.store.hasher.new()
        with await asyncio.to_thread(self.store.blobs.open, digest) as f:
            if digest.size <= VERIFY_FIRST_BYTES:
                data = await asyncio.to_thread(_read_hashed, f, hasher, -1)
                if hasher.hexdigest() != digest.hash or len(data) != digest.size:
                    await self._corrupt(context, digest)
                for offset in range(0, len(data), READ_CHUNK):
                    yield cached_pb2.ReadBlobChunk(data=data[offset:offset + READ_CHUNK])
                return
            size = 0
            while data := await asyncio.to_thread(_read_hashed, f, hasher, READ_CHUNK):
                size += len(data)
                yield cached_pb2.ReadBlobChunk(data=data)
        if hasher.hexdigest() != digest.hash or size != digest.size:
            await self._corrupt(context, digest)

    async def _corrupt(self, context: grpc.aio.ServicerContext, digest: Digest) -> None:
        log.error("blob content does not match its digest", extra={"digest": str(digest)})
        await context.abort(grpc.StatusCode.DATA_LOSS, f"blob {digest} is corrupt in the store; run `cached verify --repair`, then build again")


def _read_hashed(f, hasher, n: int) -> bytes:  # type: ignore[no-untyped-def]
    """Reads up to ``n`` bytes (all with -1) and hashes them: one worker-thread call."""
    data = f.read(n)
    hasher.update(data)
    return data
