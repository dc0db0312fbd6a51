"""Request intake: a BuildRequest into a BuildSpec, reading no file for a repeated request.

A request may send files by digest: each must be a blob the tenant uploaded
or its builds produced, and the key files among them (package.json, the
lockfile, .npmrc, patches/) are read for their content, which the keys and
validation need. The first time, ownership is checked in one read and the key
files are read in a worker thread; their contents are then kept in memory by
tenant and digest (bounded, least recently used first out). A repeated request
whose key files are all in that memory reads no file, and leaves the check of
every file sent by digest to the build's lookup transaction (``by_digest``),
so a full hit stays at one read.

A request whose files all travel inline is a pure function of its bytes:
validating it again (84 files of the example app: every path checked, every
file hashed, about 1 ms of the event loop) gives the same spec. So each app's
last all-inline request is kept with its spec, bounded in bytes, least
recently used first out, and a request equal to it field by field (protobuf
equality: every byte of every file, compared in C in a few microseconds; no
hash, so no collision to fear, and no re-serialization of the ~300 KB, which
costs half a millisecond) gets the spec validated before. The tenant is part
of what is compared, so one tenant's spec is never another's. A request that
sends files by digest or asks for a deploy always goes through validation.

This module must never read a blob on the event loop, never put a key file's
content in the memory before the tenant's ownership of it was checked, and
never serve one tenant's memory to another.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Iterable

from cached.digest import Digest
from cached.pipeline.hit import ByDigest
from cached.request.spec import BuildSpec, Limits, is_key_file, parse_request
from cached.store import Store
from cached.v1 import cached_pb2

MAX_KEPT_BYTES = 64 << 20
MAX_KEPT_FILE = 8 << 20
MAX_SPEC_BYTES = 128 << 20  # kept requests and their specs, counted as twice the bytes of their files


class KeyFileMemory:
    """(tenant, digest) -> content of key files whose ownership was checked; bounded in bytes."""

    def __init__(self, max_bytes: int = MAX_KEPT_BYTES, max_file: int = MAX_KEPT_FILE) -> None:
        self.max_bytes = max_bytes
        self.max_file = max_file
        self.bytes = 0
        self._kept: OrderedDict[tuple[str, Digest], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get_all(self, tenant: str, digests: Iterable[Digest]) -> dict[Digest, bytes] | None:
        """Every one of them, or None when any is not kept."""
        out: dict[Digest, bytes] = {}
        with self._lock:
            for d in digests:
                content = self._kept.get((tenant, d))
                if content is None:
                    return None
                self._kept.move_to_end((tenant, d))
                out[d] = content
        return out

    def keep(self, tenant: str, contents: dict[Digest, bytes]) -> None:
        with self._lock:
            for d, content in contents.items():
                if len(content) > self.max_file or (tenant, d) in self._kept:
                    continue
                self._kept[(tenant, d)] = content
                self.bytes += len(content)
            while self.bytes > self.max_bytes and self._kept:
                _, dropped = self._kept.popitem(last=False)
                self.bytes -= len(dropped)


class SpecMemory:
    """(tenant, app) -> the app's last all-inline request and its spec; bounded in bytes.

    What is found is used only when the new request equals the kept one, so
    the key needs no care beyond spreading apps apart.
    """

    def __init__(self, max_bytes: int = MAX_SPEC_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._kept: OrderedDict[tuple[str, str], tuple[cached_pb2.BuildRequest, BuildSpec, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, request: cached_pb2.BuildRequest) -> BuildSpec | None:
        """The spec of a kept request equal to this one, or None."""
        key = (request.tenant, request.app)
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
        if found is None or found[0] != request:
            return None
        return found[1]

    def keep(self, request: cached_pb2.BuildRequest, spec: BuildSpec) -> None:
        size = 2 * sum(f.digest.size for f in spec.files)  # the request's bytes and the spec's copies of them
        if size > self.max_bytes:
            return
        key = (request.tenant, request.app)
        with self._lock:
            replaced = self._kept.pop(key, None)
            if replaced is not None:
                self.bytes -= replaced[2]
            self._kept[key] = (request, spec, size)
            self.bytes += size
            while self.bytes > self.max_bytes and self._kept:
                _, (_, _, dropped) = self._kept.popitem(last=False)
                self.bytes -= dropped


class Intake:
    def __init__(self, store: Store, limits: Limits, memory: KeyFileMemory | None = None, specs: SpecMemory | None = None) -> None:
        self.store = store
        self.limits = limits
        self.memory = memory or KeyFileMemory()
        self.specs = specs or SpecMemory()

    async def parse(self, request: cached_pb2.BuildRequest) -> tuple[BuildSpec, ByDigest]:
        """The spec, and the files sent by digest whose ownership the build's lookup must still check."""
        kept = self.specs.get(request)
        if kept is not None:  # only all-inline requests are kept: nothing is left for the lookup to check
            return kept, ()
        by_digest = _by_digest(request)
        if by_digest is None:  # a malformed digest: validation says which, as it always did
            return self._parse(request, self._owned_one, self.store.blobs.read_bytes), ()
        if not by_digest:
            spec = self._parse(request, _never, _never)
            if spec.deploy is None:  # a deploy's options stay its own request's
                self.specs.keep(request, spec)
            return spec, ()
        tenant = request.tenant
        keys = [d for path, d in by_digest if is_key_file(path)]
        known = self.memory.get_all(tenant, keys)
        if known is not None:
            return self._parse(request, lambda t, d: True, known.__getitem__), tuple(by_digest)
        owned = self.store.blobs.owned_by(tenant, [d for _, d in by_digest])  # one read
        contents = await asyncio.to_thread(_read_all, self.store, [d for d in keys if d in owned])
        spec = self._parse(request, lambda t, d: d in owned, lambda d: _content(contents[d]))
        self.memory.keep(spec.tenant, {d: c for d, c in contents.items() if isinstance(c, bytes)})
        return spec, ()

    def _parse(self, request: cached_pb2.BuildRequest, known, read) -> BuildSpec:  # type: ignore[no-untyped-def]
        return parse_request(request, self.store.hasher, self.limits, known, read)

    def _owned_one(self, tenant: str, digest: Digest) -> bool:
        return bool(self.store.blobs.owned_by(tenant, [digest]))


def _by_digest(request: cached_pb2.BuildRequest) -> list[tuple[str, Digest]] | None:
    out: list[tuple[str, Digest]] = []
    for f in request.files:
        if f.WhichOneof("source") == "digest":
            try:
                out.append((f.path, Digest.from_proto(f.digest)))
            except (KeyError, ValueError):
                return None
    return out


def _read_all(store: Store, digests: list[Digest]) -> dict[Digest, bytes | BaseException]:
    """Reads each blob (in a worker thread); a failure is kept and raised where validation reads it."""
    out: dict[Digest, bytes | BaseException] = {}
    for d in dict.fromkeys(digests):
        try:
            out[d] = store.blobs.read_bytes(d)
        except Exception as e:  # noqa: BLE001 - raised again, in order, by _content
            out[d] = e
    return out


def _content(value: bytes | BaseException) -> bytes:
    if isinstance(value, BaseException):
        raise value
    return value


def _never(*args: object) -> bytes:
    raise AssertionError("a request without files sent by digest reads no blob")
