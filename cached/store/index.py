"""The LMDB index: readers from any thread, one writer thread with group commit.

Every write goes through ``submit``: the writer thread drains the queue, runs
the queued functions in one write transaction (each in a nested transaction,
so one failing function does not spoil its neighbours) and commits once. Before
that commit it runs the pre-commit hooks, which is where blobs written since
the last commit are made durable (one ``syncfs``) and registered, so an index
entry is never committed before what it names is on disk.

This module must never write from a reader's thread, never hold a read
transaction across a ``yield`` to a caller, and never be used after a fork:
LMDB environments and the writer thread do not survive ``fork()`` (a child
must open its own store, and only after the parent closed it).
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import lmdb

from cached.failpoints import failpoint

log = logging.getLogger("cached.store.index")

T = TypeVar("T")

ROOT_DBS = ("actions", "deps", "resolutions", "vitecache", "packages")
DATABASES = ("blobs", *ROOT_DBS, "apps", "access", "owners", "trees", "meta", "watermarks", "deployments")

MAX_BATCH = 2048


class PreCommitHook(Protocol):
    """Work that must ride in front of the next commit (e.g. making new blobs durable)."""

    def take(self) -> Any:
        """Claims the pending work; returns a falsy value when there is none."""

    def apply(self, txn: lmdb.Transaction, work: Any) -> None:
        """Writes inside the batch's transaction; must be idempotent (a batch can be retried)."""

    def restore(self, work: Any) -> None:
        """Gives the work back when the batch failed, so a later commit carries it."""


@dataclass
class _Job:
    fn: Callable[[lmdb.Transaction], Any]
    future: concurrent.futures.Future[Any]
    sync: bool = False


@dataclass
class _Stop:
    done: threading.Event = field(default_factory=threading.Event)


class _ReadGate:
    """Readers share it; growing the map needs it alone (LMDB unmaps under live readers)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._exclusive = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._exclusive = True
            while self._readers:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


class Index:
    """One LMDB environment with the store's named databases."""

    def __init__(
        self,
        path: Path,
        *,
        map_size: int = 1 << 40,
        flush_interval: float = 30.0,
        syncer: Callable[[], None] | None = None,
    ) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.env = lmdb.open(
            str(path), map_size=map_size, max_dbs=len(DATABASES) + 4, max_readers=512, subdir=True
        )
        stale = self.env.reader_check()
        if stale:
            log.info("cleared %d stale LMDB reader slots", stale)
        self.dbs: dict[str, Any] = {}
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    for name in DATABASES:
                        self.dbs[name] = self.env.open_db(name.encode(), txn=txn, create=True)
                break
            except lmdb.MapFullError:  # a tiny initial map: grow before anyone reads
                self.env.set_mapsize(int(self.env.info()["map_size"]) * 2)
        self.write_txn_count = 0
        self.read_txn_count = 0  # every read transaction opened (tests count what a hit costs)
        self.map_growths = 0
        self._gate = _ReadGate()
        self._queue: queue.SimpleQueue[_Job | _Stop] = queue.SimpleQueue()
        self._hooks: list[PreCommitHook] = []
        self._periodic: list[Callable[[], Callable[[lmdb.Transaction], Any] | None]] = []
        self._flush_interval = flush_interval
        self._syncer = syncer
        self.syncs = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="cached-store-writer", daemon=True)
        self._thread.start()

    # -- configuration (before use) -------------------------------------------------
    def add_pre_commit(self, hook: PreCommitHook) -> None:
        self._hooks.append(hook)

    def add_periodic(self, producer: Callable[[], Callable[[lmdb.Transaction], Any] | None]) -> None:
        """``producer()`` runs in the writer every flush interval and on close; it returns a txn fn or None."""
        self._periodic.append(producer)

    # -- reads ----------------------------------------------------------------------
    def db(self, name: str) -> Any:
        try:
            return self.dbs[name]
        except KeyError:
            raise ValueError(f"unknown index database {name!r}; known: {', '.join(DATABASES)}") from None

    @contextmanager
    def _begin_read(self, db: Any = None) -> Iterator[lmdb.Transaction]:
        self.read_txn_count += 1
        with self._gate.shared(), self.env.begin(db=db) as txn:
            yield txn

    def get(self, db: str, key: bytes) -> bytes | None:
        """One read transaction; never writes, safe from any thread."""
        with self._begin_read(self.db(db)) as txn:
            return txn.get(key)

    def get_many(self, db: str, keys: list[bytes]) -> list[bytes | None]:
        with self._begin_read(self.db(db)) as txn:
            return [txn.get(k) for k in keys]

    @contextmanager
    def read(self) -> Iterator[lmdb.Transaction]:
        """A read transaction for several lookups; keep it short (it blocks map growth)."""
        with self._begin_read() as txn:
            yield txn

    def items(self, db: str, prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
        """A snapshot of a database (or of the keys under ``prefix``), copied out of the map."""
        out: list[tuple[bytes, bytes]] = []
        with self._begin_read(self.db(db)) as txn:
            cursor = txn.cursor()
            if prefix:
                if not cursor.set_range(prefix):
                    return out
                for k, v in cursor:
                    if not k.startswith(prefix):
                        break
                    out.append((bytes(k), bytes(v)))
            else:
                out.extend((bytes(k), bytes(v)) for k, v in cursor)
        return out

    def count(self, db: str) -> int:
        with self._begin_read() as txn:
            return int(txn.stat(self.db(db))["entries"])

    # -- writes ---------------------------------------------------------------------
    def submit(self, fn: Callable[[lmdb.Transaction], T], *, sync: bool = False) -> concurrent.futures.Future[T]:
        """Runs ``fn(txn)`` in the writer thread, batched with whatever else is queued.

        ``sync=True`` forces a ``syncfs`` before the commit even when no blob is
        pending (for entries that name files made outside the blob store, such
        as a materialised tree). Use ``asyncio.wrap_future`` from a loop.
        """
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        if self._closed:
            future.set_exception(RuntimeError(f"index {self.path} is closed"))
            return future
        self._queue.put(_Job(fn, future, sync))
        return future

    def put(self, db: str, key: bytes, value: bytes) -> concurrent.futures.Future[None]:
        handle = self.db(db)

        def fn(txn: lmdb.Transaction) -> None:
            txn.put(key, value, db=handle)

        return self.submit(fn)

    def delete(self, db: str, key: bytes) -> concurrent.futures.Future[bool]:
        handle = self.db(db)
        return self.submit(lambda txn: bool(txn.delete(key, db=handle)))

    def flush(self) -> concurrent.futures.Future[None]:
        """A commit point: pending blobs are synced and registered when it resolves."""
        return self.submit(lambda txn: None)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        stop = _Stop()
        self._queue.put(stop)
        stop.done.wait()
        self._thread.join()
        # A submit that raced with close may have queued behind the stop: fail it, never strand it.
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Job) and item.future.set_running_or_notify_cancel():
                item.future.set_exception(RuntimeError(f"index {self.path} is closed"))
        self.env.close()

    # -- the writer thread ----------------------------------------------------------
    def _run(self) -> None:
        next_flush = time.monotonic() + self._flush_interval
        while True:
            timeout = max(0.0, next_flush - time.monotonic())
            try:
                first = self._queue.get(timeout=timeout)
            except queue.Empty:
                first = None
            if first is None or time.monotonic() >= next_flush:
                self._run_periodic()
                next_flush = time.monotonic() + self._flush_interval
            if first is None:
                continue
            if isinstance(first, _Stop):
                self._drain_and_stop(first)
                return
            batch = [first]
            stop: _Stop | None = None
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, _Stop):
                    stop = item
                    break
                batch.append(item)
            self._run_batch(batch)
            if stop is not None:
                self._drain_and_stop(stop)
                return

    def _drain_and_stop(self, stop: _Stop) -> None:
        leftovers: list[_Job] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Job):
                leftovers.append(item)
        if leftovers:
            self._run_batch(leftovers)
        self._run_periodic()
        self._run_batch([])  # carries pending blob registrations
        stop.done.set()

    def _run_periodic(self) -> None:
        jobs: list[_Job] = []
        for producer in self._periodic:
            try:
                fn = producer()
            except Exception:  # pragma: no cover - a producer bug must not kill the writer
                log.exception("periodic index task failed")
                continue
            if fn is not None:
                jobs.append(_Job(fn, concurrent.futures.Future()))
        if jobs:
            self._run_batch(jobs)

    def _run_batch(self, batch: list[_Job]) -> None:
        batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
        works = [(hook, hook.take()) for hook in self._hooks]
        works = [(hook, work) for hook, work in works if work]
        if not batch and not works:
            return
        try:
            if self._syncer is not None and (works or any(job.sync for job in batch)):
                self._syncer()  # what the batch names is durable before the batch commits
                self.syncs += 1
            results = self._commit(batch, works)
        except BaseException as e:  # noqa: BLE001 - every waiter must hear about it
            for hook, work in works:
                hook.restore(work)
            log.error("index batch of %d failed: %s", len(batch), e)
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(e)
            return
        for job, (ok, value) in zip(batch, results):
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)

    def _commit(self, batch: list[_Job], works: list[tuple[PreCommitHook, Any]]) -> list[tuple[bool, Any]]:
        while True:
            txn = self.env.begin(write=True)
            self.write_txn_count += 1
            try:
                for hook, work in works:
                    hook.apply(txn, work)
                results: list[tuple[bool, Any]] = []
                for job in batch:
                    child = self.env.begin(write=True, parent=txn)
                    try:
                        value = job.fn(child)
                    except lmdb.MapFullError:
                        child.abort()
                        raise
                    except Exception as e:  # noqa: BLE001 - reported to that job's waiter only
                        child.abort()
                        results.append((False, e))
                    else:
                        child.commit()
                        results.append((True, value))
                failpoint("index.before_commit")
                txn.commit()
            except lmdb.MapFullError:
                txn.abort()
                self._grow()
                continue
            except BaseException:
                txn.abort()
                raise
            failpoint("index.after_commit")
            return results

    def _grow(self) -> None:
        with self._gate.exclusive():
            size = int(self.env.info()["map_size"])
            self.env.set_mapsize(size * 2)
            self.map_growths += 1
        log.info("LMDB map full: grew %s from %d to %d bytes", self.path, size, size * 2)
