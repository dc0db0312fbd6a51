"""Blocking and asyncio clients over one gRPC channel."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import blake3
import grpc

from cached.v1 import admin_pb2, admin_pb2_grpc, cached_pb2, cached_pb2_grpc, tree_pb2
from cached_client.files import AppFile, collect_files
from cached_client.types import BuildResult, CachedError, Decision, OutputFile

INLINE_LIMIT = 1 << 20
UPLOAD_CHUNK = 1 << 20
MAX_MESSAGE_BYTES = 64 << 20
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]

EventCallback = Callable[[cached_pb2.BuildEvent], None]


def digest_of(content: bytes) -> tree_pb2.Digest:
    return tree_pb2.Digest(hash=blake3.blake3(content).hexdigest(), size=len(content), function=tree_pb2.BLAKE3)


def digest_text(d: tree_pb2.Digest) -> str:
    name = "xxh3_128" if d.function == tree_pb2.XXH3_128 else "blake3"
    return f"{name}:{d.hash}/{d.size}"


def _metadata(token: str | None) -> list[tuple[str, str]] | None:
    return [("authorization", f"Bearer {token}")] if token else None


def _files(app_dir: str | os.PathLike[str] | None, files: Sequence[AppFile] | dict[str, bytes] | None) -> list[AppFile]:
    if app_dir is not None:
        return collect_files(app_dir)
    if isinstance(files, dict):
        return [AppFile(p, c, False) for p, c in sorted(files.items())]
    if files is None:
        raise ValueError("give app_dir or files")
    return list(files)


def _request(files: list[AppFile], big: set[str], *, tenant: str, app: str, mode: str, env: dict[str, str] | None, script: str, force: bool, timeout_s: float) -> cached_pb2.BuildRequest:
    request = cached_pb2.BuildRequest(tenant=tenant, app=app, mode=mode, build_script=script, force=force, timeout_seconds=timeout_s, env=env or {})
    for f in files:
        if f.path in big:
            request.files.append(cached_pb2.File(path=f.path, executable=f.executable, digest=digest_of(f.content)))
        else:
            request.files.append(cached_pb2.File(path=f.path, executable=f.executable, content=f.content))
    return request


def _upload_chunks(tenant: str, blobs: Iterable[bytes]) -> Iterator[cached_pb2.UploadChunk]:
    first = True
    for content in blobs:
        digest = digest_of(content)
        view = memoryview(content)
        yield cached_pb2.UploadChunk(tenant=tenant if first else "", digest=digest, data=bytes(view[:UPLOAD_CHUNK]))
        first = False
        for offset in range(UPLOAD_CHUNK, len(content), UPLOAD_CHUNK):
            yield cached_pb2.UploadChunk(data=bytes(view[offset:offset + UPLOAD_CHUNK]))


class _ResultBuilder:
    def __init__(self, on_event: EventCallback | None, keep_events: bool) -> None:
        self.on_event = on_event
        self.keep_events = keep_events
        self.events: list[cached_pb2.BuildEvent] = []
        self.result: cached_pb2.BuildResult | None = None
        self.metrics: cached_pb2.Metrics | None = None
        self.decisions: list[Decision] = []
        self.started = time.perf_counter()

    def add(self, event: cached_pb2.BuildEvent) -> None:
        if self.keep_events:
            self.events.append(event)
        kind = event.WhichOneof("event")
        if kind == "result":
            self.result = event.result
        elif kind == "metrics":
            self.metrics = event.metrics
        elif kind == "decision":
            self.decisions.append(Decision.from_proto(event.decision))
        if self.on_event is not None:
            self.on_event(event)

    def finish(self) -> BuildResult:
        if self.result is None:
            raise CachedError(grpc.StatusCode.UNKNOWN, "the build stream ended without a result")
        r = self.result
        outputs = [OutputFile(o.path, digest_text(o.digest), o.digest.hash, o.digest.size, o.executable) for o in r.outputs]
        return BuildResult(
            action_key=r.action_key, cache=r.cache, reason=r.reason, duration_ms=r.duration_ms, phases=dict(r.phase_ms),
            decisions=self.decisions, outputs=outputs, lockfile=r.lockfile, log_digest=r.log, output_tree=r.output_tree,
            metrics=self.metrics, client_ms=(time.perf_counter() - self.started) * 1000, events=self.events,
        )


class Client:
    """A blocking client. ``build`` returns when the build is done; events reach ``on_event`` as they arrive."""

    def __init__(self, address: str, token: str | None = None) -> None:
        self.address = address
        self.token = token
        self.channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self.builder = cached_pb2_grpc.BuilderStub(self.channel)
        self.content = cached_pb2_grpc.ContentStoreStub(self.channel)
        self.admin = admin_pb2_grpc.AdminStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        grpc.channel_ready_future(self.channel).result(timeout=timeout)

    def build(
        self,
        app_dir: str | os.PathLike[str] | None = None,
        files: Sequence[AppFile] | dict[str, bytes] | None = None,
        *,
        app: str,
        tenant: str,
        mode: str = "",
        env: dict[str, str] | None = None,
        script: str = "",
        force: bool = False,
        timeout_s: float = 0.0,
        on_event: EventCallback | None = None,
        keep_events: bool = False,
    ) -> BuildResult:
        collected = _files(app_dir, files)
        big = {f.path for f in collected if len(f.content) > INLINE_LIMIT}
        if big:
            self.upload_missing(tenant, [f.content for f in collected if f.path in big])
        request = _request(collected, big, tenant=tenant, app=app, mode=mode, env=env, script=script, force=force, timeout_s=timeout_s)
        return self.build_request(request, on_event=on_event, keep_events=keep_events)

    def build_request(self, request: cached_pb2.BuildRequest, *, on_event: EventCallback | None = None, keep_events: bool = False) -> BuildResult:
        builder = _ResultBuilder(on_event, keep_events)
        call = self.builder.Build(request, metadata=_metadata(self.token))
        try:
            for event in call:
                builder.add(event)
        except grpc.RpcError as e:
            raise CachedError.from_rpc(e) from None
        except BaseException:
            call.cancel()  # cancelling the call cancels the build (when no one else waits on it)
            raise
        return builder.finish()

    def upload_missing(self, tenant: str, blobs: Sequence[bytes]) -> list[tree_pb2.Digest]:
        """Sends only the blobs the daemon lacks for this tenant; returns their digests."""
        by_hash = {digest_of(b).hash: b for b in blobs}
        try:
            missing = self.content.FindMissingBlobs(
                cached_pb2.FindMissingBlobsRequest(tenant=tenant, digests=[digest_of(b) for b in by_hash.values()]),
                metadata=_metadata(self.token),
            ).missing
            if not missing:
                return []
            response = self.content.UploadBlobs(_upload_chunks(tenant, [by_hash[d.hash] for d in missing]), metadata=_metadata(self.token))
        except grpc.RpcError as e:
            raise CachedError.from_rpc(e) from None
        return list(response.stored)

    def read_blob(self, tenant: str, digest: tree_pb2.Digest) -> bytes:
        try:
            return b"".join(c.data for c in self.content.ReadBlob(cached_pb2.ReadBlobRequest(tenant=tenant, digest=digest), metadata=_metadata(self.token)))
        except grpc.RpcError as e:
            raise CachedError.from_rpc(e) from None

    def write_outputs(self, tenant: str, result: BuildResult, out_dir: str | os.PathLike[str]) -> Path:
        """Materialises a result's outputs into out_dir (created; existing files are replaced)."""
        out = Path(out_dir)
        for o in result.outputs:
            target = out / o.path
            target.parent.mkdir(parents=True, exist_ok=True)
            data = self.read_blob(tenant, tree_pb2.Digest(hash=o.hash, size=o.size, function=tree_pb2.BLAKE3))
            tmp = target.with_name(target.name + ".cached-tmp")
            tmp.write_bytes(data)
            os.chmod(tmp, 0o755 if o.executable else 0o644)
            os.replace(tmp, target)
        return out

    def stats(self) -> admin_pb2.StatsResponse:
        try:
            return self.admin.Stats(admin_pb2.StatsRequest(), metadata=_metadata(self.token))
        except grpc.RpcError as e:
            raise CachedError.from_rpc(e) from None


class AsyncClient:
    """The same calls for asyncio users, over a grpc.aio channel."""

    def __init__(self, address: str, token: str | None = None) -> None:
        self.token = token
        self.channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self.builder = cached_pb2_grpc.BuilderStub(self.channel)
        self.content = cached_pb2_grpc.ContentStoreStub(self.channel)
        self.admin = admin_pb2_grpc.AdminStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def build(
        self,
        app_dir: str | os.PathLike[str] | None = None,
        files: Sequence[AppFile] | dict[str, bytes] | None = None,
        *,
        app: str,
        tenant: str,
        mode: str = "",
        env: dict[str, str] | None = None,
        script: str = "",
        force: bool = False,
        timeout_s: float = 0.0,
        on_event: EventCallback | None = None,
        keep_events: bool = False,
    ) -> BuildResult:
        collected = _files(app_dir, files)
        big = {f.path for f in collected if len(f.content) > INLINE_LIMIT}
        if big:
            await self.upload_missing(tenant, [f.content for f in collected if f.path in big])
        request = _request(collected, big, tenant=tenant, app=app, mode=mode, env=env, script=script, force=force, timeout_s=timeout_s)
        return await self.build_request(request, on_event=on_event, keep_events=keep_events)

    async def build_request(self, request: cached_pb2.BuildRequest, *, on_event: EventCallback | None = None, keep_events: bool = False) -> BuildResult:
        builder = _ResultBuilder(on_event, keep_events)
        call = self.builder.Build(request, metadata=_metadata(self.token))
        try:
            async for event in call:
                builder.add(event)
        except grpc.RpcError as e:
            raise CachedError.from_rpc(e) from None
        finally:
            if not call.done():
                call.cancel()
        return builder.finish()

    async def upload_missing(self, tenant: str, blobs: Sequence[bytes]) -> list[tree_pb2.Digest]:
        by_hash = {digest_of(b).hash: b for b in blobs}
        try:
            response = await self.content.FindMissingBlobs(
                cached_pb2.FindMissingBlobsRequest(tenant=tenant, digests=[digest_of(b) for b in by_hash.values()]),
                metadata=_metadata(self.token),
            )
            if not response.missing:
                return []

            async def chunks() -> AsyncIterator[cached_pb2.UploadChunk]:
                for chunk in _upload_chunks(tenant, [by_hash[d.hash] for d in response.missing]):
                    yield chunk
            stored = await self.content.UploadBlobs(chunks(), metadata=_metadata(self.token))
        except grpc.RpcError as e:
            raise CachedError.from_rpc(e) from None
        return list(stored.stored)

    async def read_blob(self, tenant: str, digest: tree_pb2.Digest) -> bytes:
        parts: list[bytes] = []
        try:
            async for chunk in self.content.ReadBlob(cached_pb2.ReadBlobRequest(tenant=tenant, digest=digest), metadata=_metadata(self.token)):
                parts.append(chunk.data)
        except grpc.RpcError as e:
            raise CachedError.from_rpc(e) from None
        return b"".join(parts)

    async def stats(self) -> admin_pb2.StatsResponse:
        try:
            return await self.admin.Stats(admin_pb2.StatsRequest(), metadata=_metadata(self.token))
        except grpc.RpcError as e:
            raise CachedError.from_rpc(e) from None


__all__ = ["AsyncClient", "Client", "digest_of"]
