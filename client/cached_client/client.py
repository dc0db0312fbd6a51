"""Blocking and asyncio clients over one gRPC channel per daemon.

Events reach ``on_event`` (or the iterator of ``start_build``) as the daemon
sends them. Cancelling a call cancels the build on the daemon (unless another
identical request is waiting on the same build): ``BuildCall.cancel()``, an
exception raised by ``on_event``, KeyboardInterrupt, or cancelling the asyncio
task that awaits ``AsyncClient.build``.

Given several daemon addresses, a client sends each (tenant, app) to one of
them by rendezvous hashing (``cached_client.routing``) and goes on to the
next on UNAVAILABLE; see ``Client``.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar, Union

import grpc

from cached.v1 import cached_pb2, cached_pb2_grpc, tree_pb2
from cached_client.files import AppFile, collect_files
from cached_client.outputs import write_output_files
from cached_client.routing import Addresses, parse_addresses, rendezvous_order, route_key, route_metadata
from cached_client.types import (
    BuildResult, CachedError, Decision, DeployOptions, DeployResult, Digest, Metrics, OutputFile, Stats, Unavailable,
)

if TYPE_CHECKING:
    from cached.v1 import admin_pb2, admin_pb2_grpc

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
T = TypeVar("T")
_ENDPOINTS_LOCK = threading.Lock()


def digest_of(content: bytes, function: str = "blake3") -> tree_pb2.Digest:
    """The content's digest; the hash libraries are imported here, as a build of small files (every hit) hashes nothing."""
    if function == "xxh3_128":
        import xxhash

        return tree_pb2.Digest(hash=xxhash.xxh3_128_hexdigest(content), size=len(content), function=tree_pb2.XXH3_128)
    if function != "blake3":
        raise ValueError(f"digest function {function!r}: use 'blake3' or 'xxh3_128'")
    import blake3

    return tree_pb2.Digest(hash=blake3.blake3(content).hexdigest(), size=len(content), function=tree_pb2.BLAKE3)


def _admin_pb2() -> ModuleType:
    """admin.proto's messages, imported on the first Admin call: a build never needs their descriptors."""
    from cached.v1 import admin_pb2

    return admin_pb2


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

    def finish(self, server: str = "", app: str = "") -> BuildResult:
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
            client_ms=(time.perf_counter() - self.started) * 1000, events=self.events, server=server, app=app,
        )


class _Endpoint:
    """One daemon: its address, its channel and the stubs over it.

    The Admin stub is made on first use (``admin`` can still be assigned):
    building it imports admin.proto's descriptors, which a build never uses.
    """

    def __init__(self, address: str, channel: Any, stub_channel: Any) -> None:
        self.address = address
        self.channel = channel
        self._stub_channel = stub_channel
        self.builder = cached_pb2_grpc.BuilderStub(stub_channel)
        self.content = cached_pb2_grpc.ContentStoreStub(stub_channel)

    @cached_property
    def admin(self) -> admin_pb2_grpc.AdminStub:
        from cached.v1 import admin_pb2_grpc

        return admin_pb2_grpc.AdminStub(self._stub_channel)


class _Route:
    """The addresses one call may try, in order, each at most once; the next only after UNAVAILABLE.

    UNAVAILABLE is what a daemon that is down (connection refused) or
    draining answers before doing anything, so the next address is safe to
    try. Any other error is the daemon's answer and is raised as it is.
    """

    def __init__(self, order: list[str]) -> None:
        self.order = order
        self.position = 0
        self.failures: list[tuple[str, CachedError]] = []

    def note(self, address: str, error: CachedError) -> bool:
        """Records a failure; True when it was UNAVAILABLE (the caller may go on to the next address)."""
        if error.code != grpc.StatusCode.UNAVAILABLE:
            return False
        self.failures.append((address, error))
        return True

    def next_address(self) -> str | None:
        if self.position >= len(self.order):
            return None
        self.position += 1
        return self.order[self.position - 1]

    def exhausted(self) -> CachedError:
        """The error to raise when every address was UNAVAILABLE: the daemon's own with one address."""
        if len(self.failures) == 1:
            return self.failures[0][1]
        tried = "; ".join(f"{a}: {e.details}" for a, e in self.failures)
        return Unavailable(grpc.StatusCode.UNAVAILABLE, f"no daemon answered ({tried})")

    def run(self, attempt: Callable[[str], T]) -> tuple[str, T]:
        """The first address whose attempt does not fail with UNAVAILABLE, and what it returned."""
        while (address := self.next_address()) is not None:
            try:
                return address, attempt(address)
            except CachedError as e:
                if not self.note(address, e):
                    raise
        raise self.exhausted()

    async def run_async(self, attempt: Callable[[str], Awaitable[T]]) -> tuple[str, T]:
        while (address := self.next_address()) is not None:
            try:
                return address, await attempt(address)
            except CachedError as e:
                if not self.note(address, e):
                    raise
        raise self.exhausted()


def _rpc(method: Callable[..., T], request: Any, metadata: list[tuple[str, str]] | None) -> T:
    """One unary (or client-streaming) call, its failure as a ``CachedError``."""
    try:
        return method(request, metadata=metadata)
    except grpc.RpcError as e:
        raise CachedError.from_rpc(e) from None


async def _rpc_async(method: Callable[..., Any], request: Any, metadata: list[tuple[str, str]] | None) -> Any:
    try:
        return await method(request, metadata=metadata)
    except grpc.RpcError as e:
        raise CachedError.from_rpc(e) from None


class _Routing:
    """What both clients share: the addresses, the endpoints, the order and the metadata of a call."""

    addresses: list[str]
    endpoints: dict[str, _Endpoint]
    token: str | None

    def _endpoint_for(self, address: str) -> _Endpoint:
        """The endpoint of an address; an explicit address outside the list gets its own channel on first use."""
        with _ENDPOINTS_LOCK:  # clients are shared by threads: one channel per address, never two
            if address not in self.endpoints:
                self.endpoints[address] = self._open(address)
            return self.endpoints[address]

    def _open(self, address: str) -> _Endpoint:
        raise NotImplementedError

    def _route(self, key: str | None = None, address: str | None = None) -> _Route:
        """An explicit address alone; else the key's rendezvous order; else the addresses as given (the first reachable)."""
        if address:
            return _Route([address])
        if key is not None:
            return _Route(rendezvous_order(key, self.addresses))
        return _Route(list(self.addresses))

    def _metadata(self, key: str | None = None) -> list[tuple[str, str]] | None:
        """The token, and ``x-cached-route`` for a call about one app (so a ring-hash proxy routes it too)."""
        items = [*(_metadata(self.token) or []), *(route_metadata(key) if key is not None else [])]
        return items or None

    def route_of(self, tenant: str, app: str) -> list[str]:
        """The addresses an app's calls try, in order: its daemon first, then where it goes when that one is down."""
        return rendezvous_order(route_key(tenant, app), self.addresses)

    @cached_property
    def admin(self) -> admin_pb2_grpc.AdminStub:
        """The first daemon's Admin stub, made on first use (as ``_Endpoint.admin``); assignable as before."""
        return self._endpoint_for(self.address).admin


class BuildCall:
    """A running build: iterate it for events as they arrive, ``cancel()`` it from any thread, ``result()`` it.

    Leaving a ``with`` block (or an exception in ``on_event``) before the end cancels the build.

    With several daemons, a build that fails with UNAVAILABLE before its first
    event (the daemon is down, refused the connection or is draining) starts
    again on the next address of its key's order, uploads included. One that
    already streamed events is not replayed: its phases and log lines have
    reached ``on_event``, so a replay would show them twice, and the daemon
    may still be running it (or have deployed it), so a second daemon would
    build and deploy it again. That failure is raised, and the caller decides.
    ``address`` is the daemon the build is on.
    """

    def __init__(self, route: _Route, start: Callable[[str], Any], builder: _ResultBuilder, app: str = "") -> None:
        self._route = route
        self._app = app
        self._start = start
        self._builder = builder
        self._finished = False
        self._streamed = False
        self._cancelled = False
        self.address, self._call = route.run(start)

    def __iter__(self) -> Iterator[cached_pb2.BuildEvent]:
        while True:
            try:
                for event in self._call:
                    self._streamed = True
                    self._builder.add(event)
                    yield event
                break
            except grpc.RpcError as e:
                error = CachedError.from_rpc(e)
                if self._streamed or self._cancelled or not self._route.note(self.address, error):
                    raise error from None
            except BaseException:
                self._call.cancel()  # cancelling the call cancels the build (when no one else waits on it)
                raise
            self.address, self._call = self._route.run(self._start)  # raises once every address was tried
        self._finished = True

    def result(self) -> BuildResult:
        """Reads the remaining events (delivering them to ``on_event``) and returns the result."""
        if not self._finished:
            for _ in self:
                pass
        return self._builder.finish(self.address, self._app)

    def cancel(self) -> None:
        self._cancelled = True
        self._call.cancel()

    def done(self) -> bool:
        return bool(self._call.done())

    def __enter__(self) -> "BuildCall":
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._call.done():
            self._call.cancel()


class Client(_Routing):
    """A blocking client. ``build`` returns when the build is done; events reach ``on_event`` as they arrive.

    ``address`` is one daemon (``host:port``) or several: a list, or a
    comma-separated string. With several, each (tenant, app) goes to one of
    them by rendezvous hashing (``cached_client.routing``), so its builds find
    the warm builder and the store of the daemon that built it last; on
    UNAVAILABLE a call goes on to the next address of that app's order, each
    address at most once. Calls that are not about one app (stats, purge of a
    tenant, verify, reading a blob...) go to the first address that answers,
    or to ``address=`` when given. Every call about an app also sends
    ``x-cached-route: tenant/app``, so a ring-hash proxy in front of the
    daemons (one address here) routes the same way.

    ``token`` is sent as ``authorization: Bearer <token>``; a build token acts only for the tenants
    the daemon's token file names for it (``build:TENANT:TOKEN``, or all with ``build:*:TOKEN``), and a
    call for another tenant raises ``PermissionDenied``. ``digest_function`` must match the daemon's
    (``blake3`` unless it was started with ``--digest xxh3_128``).
    """

    def __init__(self, address: Addresses, token: str | None = None, *, digest_function: str = "blake3", interceptors: Sequence[Any] = (), options: Sequence[tuple[str, Any]] = ()) -> None:
        self.addresses = parse_addresses(address)
        self.address = self.addresses[0]
        self.token = token
        self.digest_function = digest_function
        self._interceptors = list(interceptors)
        self._options = [*CHANNEL_OPTIONS, *options]
        self.endpoints: dict[str, _Endpoint] = {}
        first = self._endpoint_for(self.address)
        for a in self.addresses[1:]:
            self._endpoint_for(a)
        # The first daemon's channel and stubs, as before several addresses were allowed.
        self.channel, self.builder, self.content = first.channel, first.builder, first.content

    def _open(self, address: str) -> _Endpoint:
        channel = grpc.insecure_channel(address, options=self._options)
        return _Endpoint(address, channel, grpc.intercept_channel(channel, *self._interceptors) if self._interceptors else channel)

    def close(self) -> None:
        for endpoint in self.endpoints.values():
            endpoint.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_ready(self, timeout: float = 10.0, *, address: str | None = None) -> str:
        """Waits until one daemon (``address``, or any of them) accepts connections; returns its address."""
        addresses = [address] if address else self.addresses
        ready: "queue.Queue[str]" = queue.Queue()
        futures = []
        for a in addresses:
            future = grpc.channel_ready_future(self._endpoint_for(a).channel)
            future.add_done_callback(lambda f, a=a: ready.put(a) if not f.cancelled() else None)
            futures.append(future)
        try:
            return ready.get(timeout=timeout)
        except queue.Empty:
            raise grpc.FutureTimeoutError(f"no daemon of {', '.join(addresses)} was ready in {timeout}s") from None
        finally:
            for future in futures:
                future.cancel()

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
        """Uploads the files over 1 MiB the app's daemon lacks, starts the build there and returns it running."""
        collected = _files(app_dir, files)
        big = {f.path for f in collected if len(f.content) > INLINE_LIMIT}
        request = _request(collected, big, tenant=tenant, app=app, mode=mode, env=env, script=script, force=force,
                           timeout_s=timeout_s, deploy=_deploy(deploy), function=self.digest_function)
        blobs = [f.content for f in collected if f.path in big]
        return self._start(request, blobs, on_event=on_event, keep_events=keep_events)

    def build(self, app_dir: str | os.PathLike[str] | None = None, files: Files | None = None, **kwargs: Any) -> BuildResult:
        """``start_build(...).result()``: blocks until the build is done. Raises a ``CachedError`` subclass on failure."""
        return self.start_build(app_dir, files, **kwargs).result()

    def start_build_request(self, request: cached_pb2.BuildRequest, *, on_event: EventCallback | None = None, keep_events: bool = False) -> BuildCall:
        """Starts a request as it is; its blobs sent by digest must be on the app's daemon (``upload_missing(..., app=)``)."""
        return self._start(request, [], on_event=on_event, keep_events=keep_events)

    def build_request(self, request: cached_pb2.BuildRequest, *, on_event: EventCallback | None = None, keep_events: bool = False) -> BuildResult:
        return self.start_build_request(request, on_event=on_event, keep_events=keep_events).result()

    def _start(self, request: cached_pb2.BuildRequest, blobs: list[bytes], *, on_event: EventCallback | None, keep_events: bool) -> BuildCall:
        """The build on the first daemon of its key's order that answers; its large files uploaded to that daemon first.

        Blobs are per daemon, so a build that moves to another address uploads them there again.
        """
        key = route_key(request.tenant, request.app)
        metadata = self._metadata(key)

        def start(address: str) -> Any:
            endpoint = self._endpoint_for(address)
            if blobs:
                self._upload_missing(endpoint, request.tenant, blobs, metadata)
            return endpoint.builder.Build(request, metadata=metadata)

        return BuildCall(self._route(key), start, _ResultBuilder(on_event, keep_events), request.app)

    def find_missing(self, tenant: str, digests: Sequence[DigestLike], *, app: str = "", address: str | None = None) -> list[Digest]:
        """The digests the daemon lacks for this tenant: the app's daemon with ``app=``, else ``address`` or the first that answers."""
        key = route_key(tenant, app) if app else None
        metadata = self._metadata(key)
        return self._route(key, address).run(lambda a: self._find_missing(self._endpoint_for(a), tenant, digests, metadata))[1]

    def upload_missing(self, tenant: str, blobs: Sequence[bytes], *, app: str = "", address: str | None = None) -> list[Digest]:
        """Asks which blobs the daemon lacks for this tenant, uploads only those; returns the digests sent.

        With several daemons, pass ``app=`` for blobs a ``build_request`` of that app will name: they go to its daemon.
        """
        key = route_key(tenant, app) if app else None
        metadata = self._metadata(key)
        return self._route(key, address).run(lambda a: self._upload_missing(self._endpoint_for(a), tenant, blobs, metadata))[1]

    def _find_missing(self, endpoint: _Endpoint, tenant: str, digests: Sequence[DigestLike], metadata: list[tuple[str, str]] | None) -> list[Digest]:
        request = cached_pb2.FindMissingBlobsRequest(tenant=tenant, digests=[_digest_proto(d) for d in digests])
        return [Digest.from_proto(d) for d in _rpc(endpoint.content.FindMissingBlobs, request, metadata).missing]

    def _upload_missing(self, endpoint: _Endpoint, tenant: str, blobs: Sequence[bytes], metadata: list[tuple[str, str]] | None) -> list[Digest]:
        by_hash = {digest_of(b, self.digest_function).hash: b for b in blobs}
        missing = self._find_missing(endpoint, tenant, [digest_of(b, self.digest_function) for b in by_hash.values()], metadata)
        if not missing:
            return []
        chunks = _upload_chunks(tenant, [by_hash[d.hash] for d in missing], self.digest_function)
        return [Digest.from_proto(d) for d in _rpc(endpoint.content.UploadBlobs, chunks, metadata).stored]

    def read_blob(self, tenant: str, digest: DigestLike, *, app: str = "", address: str | None = None) -> bytes:
        """A blob's bytes, from ``address`` (a result's ``server`` holds its outputs), else the app's daemon with ``app=``
        (which also sends ``x-cached-route``, for a proxy), else the first daemon that answers."""
        key = route_key(tenant, app) if app else None
        metadata = self._metadata(key)

        def read(a: str) -> bytes:
            try:
                stream = self._endpoint_for(a).content.ReadBlob(cached_pb2.ReadBlobRequest(tenant=tenant, digest=_digest_proto(digest)), metadata=metadata)
                return b"".join(c.data for c in stream)
            except grpc.RpcError as e:
                raise CachedError.from_rpc(e) from None
        return self._route(key, address).run(read)[1]

    def write_outputs(self, tenant: str, result: BuildResult, out_dir: str | os.PathLike[str]) -> Path:
        """Materialises a result's outputs into out_dir (created; existing files are replaced), read from the daemon that built them.

        Paths from the server are not trusted: an absolute path, a ``..``
        component, or a symlink in the destination on an output's way raises
        ``UnsafeOutputPath`` (a ValueError) and nothing is written outside out_dir.
        """
        where: dict[str, Any] = {k: v for k, v in (("address", result.server), ("app", result.app)) if v}
        return write_output_files(out_dir, result.outputs, lambda o: self.read_blob(tenant, o, **where))

    def stats(self, *, address: str | None = None) -> Stats:
        return Stats.from_proto(self._admin("Stats", _admin_pb2().StatsRequest(), address=address))

    # Operations (Admin: they need the admin token when the daemon has tokens); each returns admin.proto's response.
    # Each goes to ``address`` or the first daemon that answers; purge and explain of one app go to the app's daemon.
    def stats_response(self, *, address: str | None = None) -> admin_pb2.StatsResponse:
        """Stats with everything: entries by kind, per tenant and per app (bytes, entries, hit rate, last build)."""
        return self._admin("Stats", _admin_pb2().StatsRequest(), address=address)

    def purge(self, *, app: str = "", tenant: str = "", deps_key: str = "", older_than_s: float = 0.0, all: bool = False, dry_run: bool = False, address: str | None = None) -> admin_pb2.PurgeResponse:
        """Exactly one of app ("tenant/app", or tenant= and app=), tenant, deps_key, older_than_s, all.

        One daemon's store: with several, call it with ``address=`` for each of ``addresses`` to purge them all.
        """
        app, tenant = _purge_app(app, tenant)
        request = _admin_pb2().PurgeRequest(app=app, tenant=tenant, deps_key=deps_key, older_than_seconds=int(older_than_s), all=all, dry_run=dry_run)
        return self._admin("Purge", request, key=app or None, address=address)

    def collect_garbage(self, max_bytes: int | None = None, *, dry_run: bool = False, address: str | None = None) -> admin_pb2.CollectGarbageResponse:
        """Evicts least-recently-used entries until the store fits max_bytes (None: sweep only)."""
        request = _admin_pb2().CollectGarbageRequest(dry_run=dry_run)
        if max_bytes is not None:
            request.max_bytes = max_bytes
        return self._admin("CollectGarbage", request, address=address)

    def verify(self, repair: bool = False, *, address: str | None = None) -> admin_pb2.VerifyResponse:
        return self._admin("Verify", _admin_pb2().VerifyRequest(repair=repair), address=address)

    def explain(self, tenant: str, app: str, *, address: str | None = None) -> admin_pb2.ExplainResponse:
        return self._admin("Explain", _admin_pb2().ExplainRequest(tenant=tenant, app=app), key=route_key(tenant, app), address=address)

    def purge_package(self, package: str, *, dry_run: bool = False, address: str | None = None) -> admin_pb2.PurgePackageResponse:
        """Removes everything made with ``package`` ("NAME@VERSION"), for every tenant: admin token only."""
        return self._admin("PurgePackage", _admin_pb2().PurgePackageRequest(package=package, dry_run=dry_run), address=address)

    def explain_package(self, package: str, *, limit: int = 0, address: str | None = None) -> admin_pb2.ExplainPackageResponse:
        """The apps whose last build used ``package`` ("NAME" or "NAME@VERSION"), for every tenant: admin token only."""
        return self._admin("ExplainPackage", _admin_pb2().ExplainPackageRequest(package=package, limit=limit), address=address)

    def _admin(self, method: str, request: Any, *, key: str | None = None, address: str | None = None) -> Any:
        metadata = self._metadata(key)
        return self._route(key, address).run(lambda a: _rpc(getattr(self._endpoint_for(a).admin, method), request, metadata))[1]


def _purge_app(app: str, tenant: str) -> tuple[str, str]:
    """purge(tenant="t", app="a") is purge(app="t/a"); tenant= alone purges the tenant."""
    if tenant and app and "/" not in app:
        return f"{tenant}/{app}", ""
    return app, tenant


class AsyncClient(_Routing):
    """The same calls for asyncio users, over grpc.aio channels. Cancelling the awaiting task cancels the build.

    ``address`` takes one daemon or several, routed and failed over as ``Client`` does.
    """

    def __init__(self, address: Addresses, token: str | None = None, *, digest_function: str = "blake3", interceptors: Sequence[Any] = (), options: Sequence[tuple[str, Any]] = ()) -> None:
        self.addresses = parse_addresses(address)
        self.address = self.addresses[0]
        self.token = token
        self.digest_function = digest_function
        self._interceptors = list(interceptors)
        self._options = [*CHANNEL_OPTIONS, *options]
        self.endpoints: dict[str, _Endpoint] = {}
        first = self._endpoint_for(self.address)
        for a in self.addresses[1:]:
            self._endpoint_for(a)
        self.channel, self.builder, self.content = first.channel, first.builder, first.content

    def _open(self, address: str) -> _Endpoint:
        channel = grpc.aio.insecure_channel(address, options=self._options, interceptors=self._interceptors or None)
        return _Endpoint(address, channel, channel)

    async def close(self) -> None:
        for endpoint in self.endpoints.values():
            await endpoint.channel.close()

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
        """Builds on the app's daemon (the next one when it is UNAVAILABLE before any event, as ``BuildCall`` says why)."""
        collected = _files(app_dir, files)
        big = {f.path for f in collected if len(f.content) > INLINE_LIMIT}
        request = _request(collected, big, tenant=tenant, app=app, mode=mode, env=env, script=script, force=force,
                           timeout_s=timeout_s, deploy=_deploy(deploy), function=self.digest_function)
        return await self._build(request, [f.content for f in collected if f.path in big], on_event=on_event, keep_events=keep_events)

    async def events(self, request: cached_pb2.BuildRequest) -> AsyncIterator[cached_pb2.BuildEvent]:
        """The raw event stream of one request, on its app's daemon; closing the iterator early cancels the build."""
        async for _address, event in self._events(request, []):
            yield event

    async def build_request(self, request: cached_pb2.BuildRequest, *, on_event: EventCallback | None = None, keep_events: bool = False) -> BuildResult:
        return await self._build(request, [], on_event=on_event, keep_events=keep_events)

    async def _build(self, request: cached_pb2.BuildRequest, blobs: list[bytes], *, on_event: EventCallback | None, keep_events: bool) -> BuildResult:
        builder = _ResultBuilder(on_event, keep_events)
        address = ""
        stream = self._events(request, blobs)
        try:
            async for address, event in stream:
                builder.add(event)
        finally:
            await stream.aclose()
        return builder.finish(address, request.app)

    async def _events(self, request: cached_pb2.BuildRequest, blobs: list[bytes]) -> AsyncIterator[tuple[str, cached_pb2.BuildEvent]]:
        """(address, event) pairs of one build: on the next address only when one is UNAVAILABLE before its first event."""
        key = route_key(request.tenant, request.app)
        metadata = self._metadata(key)
        route = self._route(key)

        async def start(address: str) -> Any:
            endpoint = self._endpoint_for(address)
            if blobs:
                await self._upload_missing(endpoint, request.tenant, blobs, metadata)
            return endpoint.builder.Build(request, metadata=metadata)

        while True:
            address, call = await route.run_async(start)
            streamed = False
            try:
                async for event in call:
                    streamed = True
                    yield address, event
                return
            except grpc.RpcError as e:
                error = CachedError.from_rpc(e)
                if streamed or not route.note(address, error):
                    raise error from None
            finally:
                if not call.done():
                    call.cancel()

    async def find_missing(self, tenant: str, digests: Sequence[DigestLike], *, app: str = "", address: str | None = None) -> list[Digest]:
        key = route_key(tenant, app) if app else None
        metadata = self._metadata(key)
        return (await self._route(key, address).run_async(lambda a: self._find_missing(self._endpoint_for(a), tenant, digests, metadata)))[1]

    async def upload_missing(self, tenant: str, blobs: Sequence[bytes], *, app: str = "", address: str | None = None) -> list[Digest]:
        key = route_key(tenant, app) if app else None
        metadata = self._metadata(key)
        return (await self._route(key, address).run_async(lambda a: self._upload_missing(self._endpoint_for(a), tenant, blobs, metadata)))[1]

    async def _find_missing(self, endpoint: _Endpoint, tenant: str, digests: Sequence[DigestLike], metadata: list[tuple[str, str]] | None) -> list[Digest]:
        request = cached_pb2.FindMissingBlobsRequest(tenant=tenant, digests=[_digest_proto(d) for d in digests])
        return [Digest.from_proto(d) for d in (await _rpc_async(endpoint.content.FindMissingBlobs, request, metadata)).missing]

    async def _upload_missing(self, endpoint: _Endpoint, tenant: str, blobs: Sequence[bytes], metadata: list[tuple[str, str]] | None) -> list[Digest]:
        by_hash = {digest_of(b, self.digest_function).hash: b for b in blobs}
        missing = await self._find_missing(endpoint, tenant, [digest_of(b, self.digest_function) for b in by_hash.values()], metadata)
        if not missing:
            return []

        async def chunks() -> AsyncIterator[cached_pb2.UploadChunk]:
            for chunk in _upload_chunks(tenant, [by_hash[d.hash] for d in missing], self.digest_function):
                yield chunk
        stored = await _rpc_async(endpoint.content.UploadBlobs, chunks(), metadata)
        return [Digest.from_proto(d) for d in stored.stored]

    async def read_blob(self, tenant: str, digest: DigestLike, *, app: str = "", address: str | None = None) -> bytes:
        key = route_key(tenant, app) if app else None
        metadata = self._metadata(key)

        async def read(a: str) -> bytes:
            parts: list[bytes] = []
            try:
                async for chunk in self._endpoint_for(a).content.ReadBlob(cached_pb2.ReadBlobRequest(tenant=tenant, digest=_digest_proto(digest)), metadata=metadata):
                    parts.append(chunk.data)
            except grpc.RpcError as e:
                raise CachedError.from_rpc(e) from None
            return b"".join(parts)
        return (await self._route(key, address).run_async(read))[1]

    async def stats(self, *, address: str | None = None) -> Stats:
        return Stats.from_proto(await self._admin("Stats", _admin_pb2().StatsRequest(), address=address))

    # Operations (Admin), as on Client: each returns admin.proto's response.
    async def stats_response(self, *, address: str | None = None) -> admin_pb2.StatsResponse:
        return await self._admin("Stats", _admin_pb2().StatsRequest(), address=address)

    async def purge(self, *, app: str = "", tenant: str = "", deps_key: str = "", older_than_s: float = 0.0, all: bool = False, dry_run: bool = False, address: str | None = None) -> admin_pb2.PurgeResponse:
        """Exactly one of app ("tenant/app", or tenant= and app=), tenant, deps_key, older_than_s, all."""
        app, tenant = _purge_app(app, tenant)
        request = _admin_pb2().PurgeRequest(app=app, tenant=tenant, deps_key=deps_key, older_than_seconds=int(older_than_s), all=all, dry_run=dry_run)
        return await self._admin("Purge", request, key=app or None, address=address)

    async def collect_garbage(self, max_bytes: int | None = None, *, dry_run: bool = False, address: str | None = None) -> admin_pb2.CollectGarbageResponse:
        request = _admin_pb2().CollectGarbageRequest(dry_run=dry_run)
        if max_bytes is not None:
            request.max_bytes = max_bytes
        return await self._admin("CollectGarbage", request, address=address)

    async def verify(self, repair: bool = False, *, address: str | None = None) -> admin_pb2.VerifyResponse:
        return await self._admin("Verify", _admin_pb2().VerifyRequest(repair=repair), address=address)

    async def explain(self, tenant: str, app: str, *, address: str | None = None) -> admin_pb2.ExplainResponse:
        return await self._admin("Explain", _admin_pb2().ExplainRequest(tenant=tenant, app=app), key=route_key(tenant, app), address=address)

    async def purge_package(self, package: str, *, dry_run: bool = False, address: str | None = None) -> admin_pb2.PurgePackageResponse:
        return await self._admin("PurgePackage", _admin_pb2().PurgePackageRequest(package=package, dry_run=dry_run), address=address)

    async def explain_package(self, package: str, *, limit: int = 0, address: str | None = None) -> admin_pb2.ExplainPackageResponse:
        return await self._admin("ExplainPackage", _admin_pb2().ExplainPackageRequest(package=package, limit=limit), address=address)

    async def _admin(self, method: str, request: Any, *, key: str | None = None, address: str | None = None) -> Any:
        metadata = self._metadata(key)
        return (await self._route(key, address).run_async(lambda a: _rpc_async(getattr(self._endpoint_for(a).admin, method), request, metadata)))[1]


__all__ = ["AsyncClient", "BuildCall", "Client", "digest_of"]
