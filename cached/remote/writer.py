"""The write queue: bounded, never blocking, drained by background threads.

The daemon is asyncio, but boto3 blocks, so writes run on a few plain
threads (``writer_threads``) rather than in the event loop or its default
executor (which builds use). ``offer`` is O(1) under one lock and safe from
the event loop or any thread; past ``max_entries`` or ``max_bytes`` waiting it
refuses, and the caller counts the drop. An entry whose name is already
waiting is not queued twice: for a blob (content-addressed, so the same
bytes) the second offer is a no-op; for a record (``replace=True``) the newer
value takes the waiting one's place. A name being written may be queued again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("cached.remote")


@dataclass(slots=True)
class Job:
    """One PUT to do: ``run`` does it (and counts how it went); ``size`` is what it holds in memory."""

    name: str
    size: int
    run: Callable[[], None] = field(repr=False)


# What offer() says; the tier turns the refusals into ``dropped`` reasons.
QUEUED, DUPLICATE, FULL, TOO_MANY_BYTES, CLOSED = "queued", "duplicate", "full", "bytes", "closed"


class WriteQueue:
    def __init__(self, max_entries: int, max_bytes: int, threads: int = 1, name: str = "cached-remote-writer") -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._order: deque[str] = deque()   # names waiting, oldest first
        self._jobs: dict[str, Job] = {}      # name -> the job waiting under it
        self._bytes = 0
        self._active = 0
        self._closed = False
        self._cond = threading.Condition()
        self._threads = [threading.Thread(target=self._drain, name=f"{name}-{i}", daemon=True) for i in range(threads)]
        for t in self._threads:
            t.start()

    @property
    def depth(self) -> int:
        """Entries waiting, not counting those being written."""
        with self._cond:
            return len(self._jobs)

    @property
    def queued_bytes(self) -> int:
        with self._cond:
            return self._bytes

    def offer(self, job: Job, *, replace: bool = False) -> str:
        with self._cond:
            if self._closed:
                return CLOSED
            waiting = self._jobs.get(job.name)
            if waiting is not None and not replace:
                return DUPLICATE
            if waiting is None and len(self._jobs) >= self.max_entries:
                return FULL
            freed = waiting.size if waiting is not None else 0
            if self._bytes - freed + job.size > self.max_bytes:
                return TOO_MANY_BYTES
            if waiting is None:
                self._order.append(job.name)
            self._jobs[job.name] = job
            self._bytes += job.size - freed
            self._cond.notify()
            return QUEUED

    def _drain(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closed:
                    self._cond.wait()
                if not self._jobs:
                    return
                job = self._jobs.pop(self._order.popleft())
                self._active += 1
            try:
                job.run()
            except Exception:  # run() counts its own failures; this is a bug, and must not kill the thread
                log.exception("remote: writing %s failed unexpectedly", job.name)
            finally:
                with self._cond:
                    self._active -= 1
                    self._bytes -= job.size
                    self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Waits until nothing is queued or in flight; False when ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._jobs or self._active:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self, timeout: float = 5.0) -> list[Job]:
        """Stops taking writes, lets the threads finish what they can within ``timeout``; returns the jobs left unwritten."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        finished = self.flush(timeout)
        with self._cond:
            left = [self._jobs[name] for name in self._order]
            self._jobs.clear()
            self._order.clear()
            self._bytes -= sum(job.size for job in left)
            self._cond.notify_all()
        if finished:
            for t in self._threads:
                t.join(timeout=1.0)
        return left
