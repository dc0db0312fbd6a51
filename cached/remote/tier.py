"""RemoteTier: blobs and signed records in a shared bucket, as a cache that can only help.

Every public method returns a value or a miss and never raises because of the
bucket: a failed read is a miss, a failed or refused write is dropped, and
both are counted (``stats``). What does raise is a caller's bug: a tenant or
key that cannot be an object name (``InvalidName``).

Reads block the calling thread for at most about connect + read timeout
(times ``max_attempts``), and not at all while the circuit breaker is open;
call them from a worker thread, not the event loop. Batches (``has_blobs``,
``missing``, ``get_blobs``) run their requests in parallel, so a batch costs
about one round trip. Writes (``put_blob``, ``put_record``) only enqueue: they
are O(1), safe from the event loop, and return whether the entry was queued.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from cached.digest import Digest, Hasher
from cached.remote import envelope, stats as s
from cached.remote.breaker import OPEN, CircuitBreaker
from cached.remote.client import describe, is_not_found, make_client
from cached.remote.envelope import Rejected
from cached.remote.errors import RemoteConfigError
from cached.remote.names import Layout, blob_supported
from cached.remote.settings import RemoteSettings
from cached.remote.signing import Keyring, key_id
from cached.remote.writer import CLOSED, DUPLICATE, FULL, QUEUED, TOO_MANY_BYTES, Job, WriteQueue

if TYPE_CHECKING:
    from cached.remote.gc import CollectResult

log = logging.getLogger("cached.remote")

T = TypeVar("T")
RECORD_OVERHEAD = 256       # what a record's envelope adds to its value, for the queue's byte budget
UNSUPPORTED_DIGEST = "unsupported_digest"


@dataclass(frozen=True, slots=True)
class _Result:
    """How one bucket request went: ``ok`` (with its value), ``not_found``, ``failed`` or ``skipped``."""

    status: str
    value: Any = None
    seconds: float = 0.0


class RemoteTier:
    """One daemon's view of the shared bucket. Thread-safe; ``close()`` it on the way out."""

    def __init__(self, settings: RemoteSettings, *, observer: s.Observer | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.layout = Layout(settings.prefix)
        self.stats = s.RemoteStats(observer)
        self.breaker = CircuitBreaker(settings.failure_threshold, settings.cooldown_s, clock=clock, on_change=self._circuit_changed)
        self.keyring = Keyring.of(list(settings.trusted))
        self._signer = settings.signing_key
        self.key_id: str | None = key_id(self._signer.public_key()) if self._signer is not None else None
        self._s3 = make_client(settings)
        self._bucket = settings.bucket
        self._reads = ThreadPoolExecutor(settings.read_concurrency, thread_name_prefix="cached-remote-read")
        self._queue = (WriteQueue(settings.queue_entries, settings.queue_bytes, settings.writer_threads)
                       if self._signer is not None else None)

    # -- what the daemon reads ---------------------------------------------------------------

    @property
    def writable(self) -> bool:
        """Whether this tier writes (it has a signing key); a read-only tier never sends a PUT or a DELETE."""
        return self._queue is not None

    @property
    def queue_depth(self) -> int:
        """Writes waiting (not counting those in flight); 0 for a read-only tier."""
        return self._queue.depth if self._queue is not None else 0

    @property
    def queued_bytes(self) -> int:
        return self._queue.queued_bytes if self._queue is not None else 0

    # -- blobs ------------------------------------------------------------------------------

    def has_blobs(self, digests: Iterable[Digest]) -> set[Digest]:
        """The digests the bucket holds (a HEAD each, in parallel); an error or an open breaker counts as absent."""
        wanted = [d for d in dict.fromkeys(digests) if self._shared(d)]
        present = self._map(self._head, wanted)
        return {d for d, here in zip(wanted, present) if here}

    def missing(self, digests: Iterable[Digest]) -> list[Digest]:
        """The digests the bucket lacks, in the order given, once each (what a writer should upload)."""
        unique = list(dict.fromkeys(digests))
        present = self.has_blobs(unique)
        return [d for d in unique if d not in present]

    def get_blob(self, digest: Digest) -> bytes | None:
        """The blob's bytes, checked against ``digest`` (size and hash); None on a miss, an error or a mismatch."""
        if not self._shared(digest):
            return None
        name = self.layout.blob(digest)
        result = self._call(s.GET_BLOB, lambda: self._read_body(name, digest.size))
        if result.status != "ok":
            return None
        body = result.value
        try:
            if isinstance(body, _WrongLength):
                raise Rejected(envelope.SIZE_MISMATCH, f"{body.length} bytes, the digest says {digest.size}")
            self.stats.transferred("in", len(body))
            envelope.check_blob(digest, body)
        except Rejected as e:
            self._rejected(s.GET_BLOB, name, e, result.seconds)
            return None
        self.stats.request(s.GET_BLOB, result.seconds, "hit")
        return body

    def get_blobs(self, digests: Iterable[Digest]) -> dict[Digest, bytes]:
        """The blobs found (in parallel), each checked as ``get_blob`` checks it; the others are absent from the dict."""
        wanted = list(dict.fromkeys(digests))
        bodies = self._map(self.get_blob, wanted)
        return {d: b for d, b in zip(wanted, bodies) if b is not None}

    def put_blob(self, digest: Digest, data: bytes) -> bool:
        """Queues the blob for upload; False (and counted in ``dropped``) when it will not be written.

        Its hash is checked on the writer thread, not here, so this stays O(1)
        on the event loop; a blob that does not match is dropped (``bad_digest``).
        """
        if self._queue is None:
            self.stats.drop(s.READ_ONLY)
            return False
        if not blob_supported(digest):
            self.stats.drop(s.UNSUPPORTED)
            return False
        name = self.layout.blob(digest)
        return self._offer(Job(name, len(data), lambda: self._write_blob(name, digest, data)))

    # -- records ----------------------------------------------------------------------------

    def get_record(self, kind: str, key: str) -> bytes | None:
        """The value stored at ``kind``/``key`` when a trusted key signed it there; None otherwise (counted, logged)."""
        name = self.layout.record(kind, key)
        result = self._call(s.GET_RECORD, lambda: self._read_body(name, self.settings.max_record_bytes, exact=False))
        if result.status != "ok":
            return None
        data = result.value
        try:
            if isinstance(data, _WrongLength):
                raise Rejected(envelope.TOO_LARGE, f"{data.length} bytes, over {self.settings.max_record_bytes}")
            self.stats.transferred("in", len(data))
            if len(data) > self.settings.max_record_bytes:
                raise Rejected(envelope.TOO_LARGE, f"over {self.settings.max_record_bytes} bytes")
            value = envelope.open_record(data, kind, key, self.keyring)
        except Rejected as e:
            self._rejected(s.GET_RECORD, name, e, result.seconds)
            return None
        self.stats.request(s.GET_RECORD, result.seconds, "hit")
        return value

    def put_record(self, kind: str, key: str, value: bytes) -> bool:
        """Queues the record, to be signed and uploaded by a writer thread; False (counted) when it will not be written.

        A record still waiting under the same name is replaced by this one.
        """
        name = self.layout.record(kind, key)
        if self._queue is None:
            self.stats.drop(s.READ_ONLY)
            return False
        if len(value) + RECORD_OVERHEAD > self.settings.max_record_bytes:
            self.stats.drop(envelope.TOO_LARGE)
            return False
        return self._offer(Job(name, len(value) + RECORD_OVERHEAD, lambda: self._write_record(name, kind, key, value)),
                           replace=True)

    # -- lifetime ---------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Waits until every queued write was done or dropped; False when ``timeout`` passed first."""
        return self._queue.flush(timeout) if self._queue is not None else True

    def close(self, timeout: float = 5.0) -> None:
        """Writes what it can within ``timeout``, drops (and counts) the rest, and stops the threads."""
        if self._queue is not None:
            for _ in self._queue.close(timeout):
                self.stats.drop(s.SHUTDOWN)
        self._reads.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> "RemoteTier":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def collect(self, older_than_s: float, *, dry_run: bool = False, now: float | None = None) -> "CollectResult":
        """Deletes this tier's objects last written more than ``older_than_s`` ago (writers only; raises, for operators)."""
        from cached.remote.gc import collect_objects

        if not self.writable:
            raise RemoteConfigError("remote gc deletes objects: only a writer (a tier with --remote-signing-key) may")
        return collect_objects(self._s3, self._bucket, self.layout, older_than_s, dry_run=dry_run, now=now)

    # -- the bucket -------------------------------------------------------------------------

    def _shared(self, digest: Digest) -> bool:
        if blob_supported(digest):
            return True
        self.stats.reject(UNSUPPORTED_DIGEST)
        return False

    def _map(self, fn: Callable[[Digest], T], items: list[Digest]) -> list[T]:
        if len(items) > 1:
            try:
                return list(self._reads.map(fn, items))
            except RuntimeError:  # the pool is shut down (a read after close()): one at a time, still no exception
                pass
        return [fn(d) for d in items]

    def _head(self, digest: Digest) -> bool:
        name = self.layout.blob(digest)
        result = self._call(s.HEAD, lambda: self._s3.head_object(Bucket=self._bucket, Key=name))
        if result.status != "ok":
            return False
        size = result.value.get("ContentLength")
        if size != digest.size:
            self._rejected(s.HEAD, name, Rejected(envelope.SIZE_MISMATCH, f"{size} bytes, the digest says {digest.size}"),
                           result.seconds)
            return False
        self.stats.request(s.HEAD, result.seconds, "hit")
        return True

    def _read_body(self, name: str, limit: int, *, exact: bool = True) -> "bytes | _WrongLength":
        """The object's bytes, reading at most ``limit`` + 1: a wrong-sized or huge object is refused, not downloaded."""
        response = self._s3.get_object(Bucket=self._bucket, Key=name)
        body = response["Body"]
        try:
            length = response.get("ContentLength")
            if length is not None and (length != limit if exact else length > limit):
                return _WrongLength(length)
            data: bytes = body.read(limit + 1)
            return data
        finally:
            body.close()

    def _call(self, op: str, fn: Callable[[], Any]) -> _Result:
        """Runs one request through the breaker; counts misses, errors and skips (hits are counted by the caller)."""
        if not self.breaker.allow():
            self.stats.skip(op)
            return _Result("skipped")
        start = time.perf_counter()
        try:
            value = fn()
        except Exception as e:  # whatever went wrong, the caller gets a miss
            seconds = time.perf_counter() - start
            if is_not_found(e):
                self.breaker.success()
                self.stats.request(op, seconds, "miss")
                return _Result("not_found", seconds=seconds)
            self.breaker.failure()
            self.stats.error(op)
            self.stats.request(op, seconds, "error")
            log.warning("remote: %s failed: %s", op, describe(e))
            return _Result("failed", seconds=seconds)
        self.breaker.success()
        return _Result("ok", value, time.perf_counter() - start)

    def _rejected(self, op: str, name: str, e: Rejected, seconds: float) -> None:
        self.stats.reject(e.reason)
        self.stats.request(op, seconds, "rejected")
        log.warning("remote: refused %s: %s (treated as a miss)", name, e)

    def _offer(self, job: Job, *, replace: bool = False) -> bool:
        assert self._queue is not None
        outcome = self._queue.offer(job, replace=replace)
        if outcome in (QUEUED, DUPLICATE):
            return True
        self.stats.drop({FULL: s.QUEUE_FULL, TOO_MANY_BYTES: s.QUEUE_BYTES, CLOSED: s.SHUTDOWN}[outcome])
        return False

    def _write_blob(self, name: str, digest: Digest, data: bytes) -> None:
        if Hasher(digest.function).bytes(data) != digest:
            log.warning("remote: not uploading %s: the bytes given hash to something else", digest)
            self.stats.drop(s.BAD_DIGEST)
            return
        self._put(s.PUT_BLOB, name, data)

    def _write_record(self, name: str, kind: str, key: str, value: bytes) -> None:
        assert self._signer is not None and self.key_id is not None
        self._put(s.PUT_RECORD, name, envelope.seal(self._signer, self.key_id, kind, key, value))

    def _put(self, op: str, name: str, body: bytes) -> None:
        result = self._call(op, lambda: self._s3.put_object(Bucket=self._bucket, Key=name, Body=body, ContentLength=len(body)))
        if result.status == "ok":
            self.stats.transferred("out", len(body))
            self.stats.request(op, result.seconds, "ok")
        else:
            self.stats.drop(s.CIRCUIT_OPEN if result.status == "skipped" else s.BUCKET_ERROR)

    def _circuit_changed(self, state: str) -> None:
        if state == OPEN:
            log.warning("remote: %d consecutive failures: the shared tier is skipped for %.0f s (builds go on locally)",
                        self.breaker.threshold, self.breaker.cooldown_s)
        else:
            log.warning("remote: the bucket answers again; the shared tier is back")
        self.stats.circuit(state)


@dataclass(frozen=True, slots=True)
class _WrongLength:
    """An object whose announced length makes it unusable: refused without reading its body."""

    length: int
