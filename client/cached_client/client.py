"""Blocking and asyncio clients over one gRPC channel.

Events reach ``on_event`` (or the iterator of ``start_build``) as the daemon
sends them. Cancelling a call cancels the build on the daemon (unless another
identical request is waiting on the same build): ``BuildCall.cancel()``, an
exception raised by ``on_event``, KeyboardInterrupt, or cancelling the asyncio
task that awaits ``AsyncClient.build``.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Union

import blake3
import grpc
import xxhash

from cached.v1 import admin_pb2, admin_pb2_grpc, cached_pb2, cached_pb2_grpc, tree_pb2
from cached_client.files import AppFile, collect_files
from cached_client.outputs import write_output_files
from cached_client.types import (
    BuildResult, CachedError, Decision, DeployOptions, DeployResult, Digest, Metrics, OutputFile, Stats,
)

INLINE_LIMIT = 1 << 20  # files up to this size travel inside the BuildRequest
UPLOAD_CHUNK = 1 << 20
MAX_MESSAGE_BYTES = 64 << 20
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]

EventCallback = Callable[[cached_pb2.BuildEvent], None]
DigestLike = Union[Digest, tree_pb2.Digest, OutputFile]
Files = Union[Sequence[AppFile], dict[str, bytes]]


def digest_of(content: bytes, function: str = "blake3") -> tree_pb2.Digest:
    if function == "xxh3_128":
        return tree_pb2.Digest(hash=xxhash.xxh3_128_hexdigest(content), size=len(content), function=tree_pb2.XXH3_128)
    if function != "blake3":
        raise ValueError(f"digest function {function!r}: use 'blake3' or 'xxh3_128'")
    return tree_pb2.Digest(hash=blake3.blake3(content).hexdigest(), size=len(content), function=tree_pb2.BLAKE3)


def digest_text(d: tree_pb2.Digest) -> str:
    return str(Digest.from_proto(d))


def _digest_proto(d: DigestLike) -> tree_pb2.Digest:
    if isinstance(d, tree_pb2.Digest):
        return d
    if isinstance(d, OutputFile):
        return d.digest_ref.to_proto()
    return d.to_proto()


def _metadata(token: str | None) -> list[tuple[str, str]] | None:
    return [("authorization", f"Bearer {token}")] if token else None


def _files(app_dir: str | os.PathLike[str] | None, files: Files | None) -> list[AppFile]:
    if app_dir is not None:
        return collect_files(app_dir)
    if isinstance(files, dict):
        return [AppFile(p, c, False) for p, c in sorted(files.items())]
    if files is None:
        raise ValueError("give app_dir or files")
    return list(files)


def _deploy(deploy: DeployOptions | cached_pb2.DeployOptions | dict[str, Any] | None) -> cached_pb2.DeployOptions | None:
    if deploy is None or isinstance(deploy, cached_pb2.DeployOptions):
        return deploy
    if isinstance(deploy, dict):
        deploy = DeployOptions(**deploy)
    return deploy.to_proto()


def _request(
    files: list[AppFile], big: set[str], *, tenant: str, app: str, mode: str, env: dict[str, str] | None, script: str,
    force: bool, timeout_s: float, deploy: cached_pb2.DeployOptions | None, function: str,
) -> cached_pb2.BuildRequest:
    request = cached_pb2.BuildRequest(tenant=tenant, app=app, mode=mode, build_script=script, force=force, timeout_seconds=timeout_s, env=env or {})
    if deploy is not None:
        request.deploy.CopyFrom(deploy)
    for f in files:
        if f.path in big:
            request.files.append(cached_pb2.File(path=f.path, executable=f.executable, digest=digest_of(f.content, function)))
        else:
            request.files.append(cached_pb2.File(path=f.path, executable=f.executable, content=f.content))
    return request


def _upload_chunks(tenant: str, blobs: Iterable[bytes], function: str) -> Iterator[cached_pb2.UploadChunk]:
    first = True
    for content in blobs:
        digest = digest_of(content, function)
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
        self.deploy: cached_pb2.DeployResult | None = None
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
        elif kind == "deploy_result":
            self.deploy = event.deploy_result
        if self.on_event is not None:
            self.on_event(event)

    def finish(self) -> BuildResult:
        if self.result is None:
            raise CachedError(grpc.StatusCode.UNKNOWN, "the build stream ended without a result")
        r = self.result
        return BuildResult(
            action_key=r.action_key, cache=r.cache, reason=r.reason, duration_ms=r.duration_ms, phases=dict(r.phase_ms),
            decisions=self.decisions, outputs=[OutputFile.from_proto(o) for o in r.outputs], lockfile=r.lockfile,
            log_digest=Digest.from_proto(r.log) if r.HasField("log") else None,
            output_tree=Digest.from_proto(r.output_tree) if r.HasField("output_tree") else None,
            metrics=Metrics.from_proto(self.metrics) if self.metrics is not None else None,
            deploy=DeployResult.from_proto(self.deploy) if self.deploy is not None else None,
            client_ms=(time.perf_counter() - self.started) * 1000, events=self.events,
        )


class BuildCall:
    """A running build: iterate it for events as they arrive, ``cancel()`` it from any thread, ``result()`` it.

    Leaving a ``with`` block (or an exception in ``on_event``) before the end cancels the build.
    """

    def __init__(self, call: Any, builder: _ResultBuilder) -> None:
        self._call = call
        self._builder = builder
        self._finished = False

    def __iter__(self) -> Iterator[cached_pb2.BuildEvent]:
        try:
            for event in self._call:
                self._builder.add(event)
                yield event
        except grpc.RpcError as e:
            raise CachedError.from_rpc(e) from None
        except BaseException:
            self._call.cancel()  # cancelling the call cancels the build (when no one else waits on it)
            raise
        self._finished = True

    def result(self) -> BuildResult:
        """Reads the remaining events (delivering them to ``on_event``) and returns the result."""
        if not self._finished:
            for _ in self:
                pass
        return self._builder.finish()

    def cancel(self) -> None:
        self._call.cancel()

    def done(self) -> bool:
        return bool(self._call.done())

    def __enter__(self) -> "BuildCall":
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._call.done():
            self._call.cancel()


class Client:
    """A blocking client. ``build`` returns when the build is done; events reach ``on_event`` as they arrive.

    ``token`` is sent as ``authorization: Bearer <token>``; a build token acts only for the tenants
    the daemon's token file names for it (``build:TENANT:TOKEN``, or all with ``build:*:TOKEN``), and a
    call for another tenant raises ``PermissionDenied``. ``digest_function`` must match the daemon's
    (``blake3`` unless it was started with ``--digest xxh3_128``).
    """

    def __init__(self, address: str, token: str | None = None, *, digest_function: str = "blake3", interceptors: Sequence[Any] = (), options: Sequence[tuple[str, Any]] = ()) -> None:
        self.address = address
        self.token = token
        self.digest_function = digest_function
        self.channel = grpc.insecure_channel(address, options=[*CHANNEL_OPTIONS, *options])
        channel = grpc.intercept_channel(self.channel, *interceptors) if interceptors else self.channel
        self.builder = cached_pb2_grpc.BuilderStub(channel)
        self.content = cached_pb2_grpc.ContentStoreStub(channel)
        self.admin = admin_pb2_grpc.AdminStub(channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        grpc.channel_ready_future(self.channel).result(timeout=timeout)

    def start_build(
        self,
        app_dir: str | os.PathLike[str] | None = None,
        files: Files | None = None,
        *,
        app: str,
        tenant: str,
        mode: str = "",
        env: dict[str, str] | None = None,
        script: str = "",
        force: bool = False,
        timeout_s: float = 0.0,
        deploy: DeployOptions | dict[str, Any] | None = None,
        on_event: EventCallback | None = None,
        keep_events: bool = False,
    ) -> BuildCall:
        """Uploads the files over 1 MiB the daemon lacks, starts the build and returns it running."""
        collected = _files(app_dir, files)
        big = {f.path for f in collected if len(f.content) > INLINE_LIMIT}
        if big:
            self.upload_missing(tenant, [f.content for f in collected if f.path in big])
        request = _request(collected, big, tenant=tenant, app=app, mode=mode, env=env, script=script, force=force,
                           timeout_s=timeout_s, deploy=_deploy(deploy), function=self.digest_function)
        return self.start_build_request(request, on_event=on_event, keep_events=keep_events)

    def build(self, app_dir: str | os.PathLike[str] | None = None, files: Files | None = None, **kwargs: Any) -> BuildResult:
        """``start_build(...).result()``: blocks until the build is done. Raises a ``CachedError`` subclass on failure."""
        return self.start_build(app_dir, files, **kwargs).result()

    def start_build_request(self, request: cached_pb2.BuildRequest, *, on_event: EventCallback | None = None, keep_events: bool = False) -> BuildCall:
        return BuildCall(self.builder.Build(request, metadata=_metadata(self.token)), _ResultBuilder(on_event, keep_events))

    def build_request(self, request: cached_pb2.BuildRequest, *, on_event: EventCallback | None = None, keep_events: bool = False) -> BuildResult:
        return self.start_build_request(request, on_event=on_event, keep_events=keep_events).result()

    def find_missing(self, tenant: str, digests: Sequence[DigestLike]) -> list[Digest]:
        try:
            response = self.content.FindMissingBlobs(
                cached_pb2.FindMissingBlobsRequest(tenant=tenant, digests=[_digest_proto(d) for d in digests]), metadata=_metadata(self.token),
            )
        except grpc.RpcError as e:
            raise CachedError.from_rpc(e) from None
        return [Digest.from_proto(d) for d in response.missing]

    def upload_missing(self, tenant: str, blobs: Sequence[bytes]) -> list[Digest]:
        """Asks which blobs the daemon lacks for this tenant, uploads only those; returns the digests sent."""
        by_hash = {digest_of(b, self.digest_function).hash: b for b in blobs}
        missing = self.find_missing(tenant, [digest_of(b, self.digest_function) for b in by_hash.values()])
        if not missing:
            return []
        try:
            response = self.content.UploadBlobs(_upload_chunks(tenant, [by_hash[d.hash] for d in missing], self.digest_function), metadata=_metadata(self.token))
        except grpc.RpcError as e:
            raise CachedError.from_rpc(e) from None
        return [Digest.from_proto(d) for d in response.stored]

    def read_blob(self, tenant: str, digest: DigestLike) -> bytes:
        try:
            return b"".join(c.data for c in self.content.ReadBlob(cached_pb2.ReadBlobRequest(tenant=tenant, digest=_digest_proto(digest)), metadata=_metadata(self.token)))
        except grpc.RpcError as e:
            raise CachedError.from_rpc(e) from None

    def write_outputs(self, tenant: str, result: BuildResult, out_dir: str | os.PathLike[str]) -> Path:
        """Materialises a result's outputs into out_dir (created; existing files are replaced).

        Paths from the server are not trusted: an absolute path, a ``..``
        component, or a symlink in the destination on an output's way raises
        ``UnsafeOutputPath`` (a ValueError) and nothing is written outside out_dir.
        """
        return write_output_files(out_dir, result.outputs, lambda o: self.read_blob(tenant, o))

    def stats(self) -> Stats:
        try:
            return Stats.from_proto(self.admin.Stats(admin_pb2.StatsRequest(), metadata=_metadata(self.token)))
        except grpc.RpcError as e:
            raise CachedError.from_rpc(e) from None

    # Operations (Admin: they need the admin token when the daemon has tokens); each returns admin.proto's response.
    def stats_response(self) -> admin_pb2.StatsResponse:
        """Stats with everything: entries by kind, per tenant and per app (bytes, entries, hit rate, last build)."""
        return self._admin(self.admin.Stats, admin_pb2.StatsRequest())

    def purge(self, *, app: str = "", tenant: str = "", deps_key: str = "", older_than_s: float = 0.0, all: bool = False, dry_run: bool = False) -> admin_pb2.PurgeResponse:
        """Exactly one of app ("tenant/app", or tenant= and app=), tenant, deps_key, older_than_s, all."""
        app, tenant = _purge_app(app, tenant)
        request = admin_pb2.PurgeRequest(app=app, tenant=tenant, deps_key=deps_key, older_than_seconds=int(older_than_s), all=all, dry_run=dry_run)
        return self._admin(self.admin.Purge, request)

    def collect_garbage(self, max_bytes: int | None = None, *, dry_run: bool = False) -> admin_pb2.CollectGarbageResponse:
        """Evicts least-recently-used entries until the store fits max_bytes (None: sweep only)."""
        request = admin_pb2.CollectGarbageRequest(dry_run=dry_run)
        if max_bytes is not None:
            request.max_bytes = max_bytes
        return self._admin(self.admin.CollectGarbage, request)

    def verify(self, repair: bool = False) -> admin_pb2.VerifyResponse:
        return self._admin(self.admin.Verify, admin_pb2.VerifyRequest(repair=repair))

    def explain(self, tenant: str, app: str) -> admin_pb2.ExplainResponse:
        return self._admin(self.admin.Explain, admin_pb2.ExplainRequest(tenant=tenant, app=app))

    def purge_package(self, package: str, *, dry_run: bool = False) -> admin_pb2.PurgePackageResponse:
        """Removes everything made with ``package`` ("NAME@VERSION"), for every tenant: admin token only."""
        return self._admin(self.admin.PurgePackage, admin_pb2.PurgePackageRequest(package=package, dry_run=dry_run))

    def explain_package(self, package: str, *, limit: int = 0) -> admin_pb2.ExplainPackageResponse:
        """The apps whose last build used ``package`` ("NAME" or "NAME@VERSION"), for every tenant: admin token only."""
        return self._admin(self.admin.ExplainPackage, admin_pb2.ExplainPackageRequest(package=package, limit=limit))

    def _admin(self, method: Any, request: Any) -> Any:
        try:
            return method(request, metadata=_metadata(self.token))
        except grpc.RpcError as e:
            raise CachedError.from_rpc(e) from None


def _purge_app(app: str, tenant: str) -> tuple[str, str]:
    """purge(tenant="t", app="a") is purge(app="t/a"); tenant= alone purges the tenant."""
    if tenant and app and "/" not in app:
        return f"{tenant}/{app}", ""
    return app, tenant


class AsyncClient:
    """The same calls for asyncio users, over a grpc.aio channel. Cancelling the awaiting task cancels the build."""

    def __init__(self, address: str, token: str | None = None, *, digest_function: str = "blake3", interceptors: Sequence[Any] = (), options: Sequence[tuple[str, Any]] = ()) -> None:
        self.address = address
        self.token = token
        self.digest_function = digest_function
        self.channel = grpc.aio.insecure_channel(address, options=[*CHANNEL_OPTIONS, *options], interceptors=list(interceptors) or None)
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
        files: Files | None = None,
        *,
        app: str,
        tenant: str,
        mode: str = "",
        env: dict[str, str] | None = None,
        script: str = "",
        force: bool = False,
        timeout_s: float = 0.0,
        deploy: DeployOptions | dict[str, Any] | None = None,
        on_event: EventCallback | None = None,
        keep_events: bool = False,
    ) -> BuildResult:
        collected = _files(app_dir, files)
        big = {f.path for f in collected if len(f.content) > INLINE_LIMIT}
        if big:
            await self.upload_missing(tenant, [f.content for f in collected if f.path in big])
        request = _request(collected, big, tenant=tenant, app=app, mode=mode, env=env, script=script, force=force,
                           timeout_s=timeout_s, deploy=_deploy(deploy), function=self.digest_function)
        return await self.build_request(request, on_event=on_event, keep_events=keep_events)

    async def events(self, request: cached_pb2.BuildRequest) -> AsyncIterator[cached_pb2.BuildEvent]:
        """The raw event stream of one request; closing the iterator early cancels the build."""
        call = self.builder.Build(request, metadata=_metadata(self.token))
        try:
            async for event in call:
                yield event
        except grpc.RpcError as e:
            raise CachedError.from_rpc(e) from None
        finally:
            if not call.done():
                call.cancel()

    async def build_request(self, request: cached_pb2.BuildRequest, *, on_event: EventCallback | None = None, keep_events: bool = False) -> BuildResult:
        builder = _ResultBuilder(on_event, keep_events)
        stream = self.events(request)
        try:
            async for event in stream:
                builder.add(event)
        finally:
            await stream.aclose()
        return builder.finish()

    async def find_missing(self, tenant: str, digests: Sequence[DigestLike]) -> list[Digest]:
        try:
            response = await self.content.FindMissingBlobs(
                cached_pb2.FindMissingBlobsRequest(tenant=tenant, digests=[_digest_proto(d) for d in digests]), metadata=_metadata(self.token),
            )
        except grpc.RpcError as e:
            raise CachedError.from_rpc(e) from None
        return [Digest.from_proto(d) for d in response.missing]

    async def upload_missing(self, tenant: str, blobs: Sequence[bytes]) -> list[Digest]:
        by_hash = {digest_of(b, self.digest_function).hash: b for b in blobs}
        missing = await self.find_missing(tenant, [digest_of(b, self.digest_function) for b in by_hash.values()])
        if not missing:
            return []

        async def chunks() -> AsyncIterator[cached_pb2.UploadChunk]:
            for chunk in _upload_chunks(tenant, [by_hash[d.hash] for d in missing], self.digest_function):
                yield chunk
        try:
            stored = await self.content.UploadBlobs(chunks(), metadata=_metadata(self.token))
        except grpc.RpcError as e:
            raise CachedError.from_rpc(e) from None
        return [Digest.from_proto(d) for d in stored.stored]

    async def read_blob(self, tenant: str, digest: DigestLike) -> bytes:
        parts: list[bytes] = []
        try:
            async for chunk in self.content.ReadBlob(cached_pb2.ReadBlobRequest(tenant=tenant, digest=_digest_proto(digest)), metadata=_metadata(self.token)):
                parts.append(chunk.data)
        except grpc.RpcError as e:
            raise CachedError.from_rpc(e) from None
        return b"".join(parts)

    async def stats(self) -> Stats:
        try:
            return Stats.from_proto(await self.admin.Stats(admin_pb2.StatsRequest(), metadata=_metadata(self.token)))
        except grpc.RpcError as e:
            raise CachedError.from_rpc(e) from None

    # Operations (Admin), as on Client: each returns admin.proto's response.
    async def stats_response(self) -> admin_pb2.StatsResponse:
        return await self._admin(self.admin.Stats, admin_pb2.StatsRequest())

    async def purge(self, *, app: str = "", tenant: str = "", deps_key: str = "", older_than_s: float = 0.0, all: bool = False, dry_run: bool = False) -> admin_pb2.PurgeResponse:
        """Exactly one of app ("tenant/app", or tenant= and app=), tenant, deps_key, older_than_s, all."""
        app, tenant = _purge_app(app, tenant)
        request = admin_pb2.PurgeRequest(app=app, tenant=tenant, deps_key=deps_key, older_than_seconds=int(older_than_s), all=all, dry_run=dry_run)
        return await self._admin(self.admin.Purge, request)

    async def collect_garbage(self, max_bytes: int | None = None, *, dry_run: bool = False) -> admin_pb2.CollectGarbageResponse:
        request = admin_pb2.CollectGarbageRequest(dry_run=dry_run)
        if max_bytes is not None:
            request.max_bytes = max_bytes
        return await self._admin(self.admin.CollectGarbage, request)

    async def verify(self, repair: bool = False) -> admin_pb2.VerifyResponse:
        return await self._admin(self.admin.Verify, admin_pb2.VerifyRequest(repair=repair))

    async def explain(self, tenant: str, app: str) -> admin_pb2.ExplainResponse:
        return await self._admin(self.admin.Explain, admin_pb2.ExplainRequest(tenant=tenant, app=app))

    async def purge_package(self, package: str, *, dry_run: bool = False) -> admin_pb2.PurgePackageResponse:
        return await self._admin(self.admin.PurgePackage, admin_pb2.PurgePackageRequest(package=package, dry_run=dry_run))

    async def explain_package(self, package: str, *, limit: int = 0) -> admin_pb2.ExplainPackageResponse:
        return await self._admin(self.admin.ExplainPackage, admin_pb2.ExplainPackageRequest(package=package, limit=limit))

    async def _admin(self, method: Any, request: Any) -> Any:
        try:
            return await method(request, metadata=_metadata(self.token))
        except grpc.RpcError as e:
            raise CachedError.from_rpc(e) from None


__all__ = ["AsyncClient", "BuildCall", "Client", "digest_of"]
