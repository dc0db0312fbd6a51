"""ContentStore: FindMissingBlobs, UploadBlobs and ReadBlob. Decides nothing itself.

It authorises the tenant first, turns messages into digests and calls
``cached.content.ContentStore``, which scopes every answer to the tenant,
re-hashes uploads and reads and does the file work off the event loop; domain
errors become status codes through ``status_for``. It never touches storage.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, aclosing

import grpc

from cached.content import ContentStore, Upload
from cached.digest import Digest
from cached.errors import BuildError, InvalidRequest
from cached.request.spec import Limits
from cached.server.auth import authorize_tenant
from cached.server.status import status_for
from cached.v1 import cached_pb2, cached_pb2_grpc, tree_pb2


class ContentService(cached_pb2_grpc.ContentStoreServicer):
    def __init__(self, content: ContentStore, limits: Limits | None = None) -> None:
        self.content = content
        self.limits = limits or Limits()

    async def FindMissingBlobs(self, request: cached_pb2.FindMissingBlobsRequest, context: grpc.aio.ServicerContext) -> cached_pb2.FindMissingBlobsResponse:
        await authorize_tenant(context, request.tenant)
        try:
            tenant = self.limits.check_tenant(request.tenant)
            # Thousands of digests (a watch sends every file) are thousands of checks and stats: a worker thread.
            return await asyncio.to_thread(self._find_missing, tenant, request.digests)
        except BuildError as e:
            await context.abort(*status_for(e))
            raise  # not reached: abort raises

    def _find_missing(self, tenant: str, messages: Iterable[tree_pb2.Digest]) -> cached_pb2.FindMissingBlobsResponse:
        missing = self.content.find_missing(tenant, [Digest.from_proto(m) for m in messages])
        return cached_pb2.FindMissingBlobsResponse(missing=[d.to_proto() for d in missing])

    async def UploadBlobs(self, request_iterator: AsyncIterator[cached_pb2.UploadChunk], context: grpc.aio.ServicerContext) -> cached_pb2.UploadBlobsResponse:
        stored: list[Digest] = []
        try:
            async with AsyncExitStack() as stack:
                upload: Upload | None = None
                async for chunk in request_iterator:
                    if upload is None:
                        if not chunk.tenant:
                            raise InvalidRequest("tenant", "the first chunk must name the tenant")
                        await authorize_tenant(context, chunk.tenant)  # before a byte of it is kept
                        upload = await stack.enter_async_context(self.content.upload(self.limits.check_tenant(chunk.tenant)))
                    if chunk.HasField("digest") and chunk.unknown_digest:
                        raise InvalidRequest("digest", "a chunk carries a digest or unknown_digest, not both")
                    if chunk.HasField("digest"):
                        await upload.start(Digest.from_proto(chunk.digest))
                    elif chunk.unknown_digest:
                        await upload.start(None)  # hashed as it comes; its digest is returned in stored
                    await upload.write(chunk.data)
                if upload is None:
                    raise InvalidRequest("tenant", "the first chunk must name the tenant")
                stored = await upload.commit()
        except BuildError as e:
            await context.abort(*status_for(e))
        return cached_pb2.UploadBlobsResponse(stored=[d.to_proto() for d in stored])

    async def ReadBlob(self, request: cached_pb2.ReadBlobRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[cached_pb2.ReadBlobChunk]:
        await authorize_tenant(context, request.tenant)
        try:
            tenant = self.limits.check_tenant(request.tenant)
            async with aclosing(self.content.read(tenant, Digest.from_proto(request.digest))) as chunks:
                async for data in chunks:
                    yield cached_pb2.ReadBlobChunk(data=data)
        except BuildError as e:
            await context.abort(*status_for(e))
