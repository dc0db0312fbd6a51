"""What the shared tier counts, and the hook that feeds the daemon's metrics.

``RemoteStats`` keeps plain counters (readable in tests and ``cached stats``
without Prometheus); every event is also passed to an ``Observer``, whose
methods do nothing by default. The daemon subclasses it to feed its
Prometheus registry (a histogram of ``request``'s seconds by op and outcome,
counters for the rest), so this package never imports prometheus_client.
An observer that raises is logged once and otherwise ignored: metrics never
break a build.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

log = logging.getLogger("cached.remote")

# Operations, the label of ``errors``, ``skipped`` and the observer's ``request``.
HEAD, GET_BLOB, GET_RECORD, PUT_BLOB, PUT_RECORD, LIST, DELETE = (
    "head", "get_blob", "get_record", "put_blob", "put_record", "list", "delete")
# Why a write was dropped (the label of ``dropped``).
QUEUE_FULL = "queue_full"        # too many entries waiting
QUEUE_BYTES = "queue_bytes"      # too many bytes waiting (or one blob larger than the whole budget)
BUCKET_ERROR = "bucket_error"    # the PUT failed
CIRCUIT_OPEN = "circuit_open"    # the bucket is down: not tried
READ_ONLY = "read_only"          # this tier has no signing key
BAD_DIGEST = "bad_digest"        # the bytes given do not hash to the digest given
UNSUPPORTED = "unsupported"      # a digest function the bucket does not take (only BLAKE3 is shared)
SHUTDOWN = "shutdown"            # still queued when close() gave up waiting


class Observer:
    """Callbacks for the daemon's metrics; each is called from whichever thread did the work, and must be quick."""

    def request(self, op: str, seconds: float, outcome: str) -> None:
        """One bucket request finished: outcome ``hit``, ``miss``, ``ok``, ``rejected`` or ``error``."""

    def transferred(self, direction: str, n: int) -> None:
        """``n`` bytes came in (``in``: downloads) or went out (``out``: uploads)."""

    def dropped(self, reason: str) -> None:
        """A write was not done."""

    def rejected(self, reason: str) -> None:
        """Something read from the bucket failed its check and was treated as a miss."""

    def error(self, op: str) -> None:
        """A request failed (the bucket down, a timeout, a refusal)."""

    def skipped(self, op: str) -> None:
        """A read was not tried because the circuit breaker is open."""

    def circuit(self, state: str) -> None:
        """The circuit breaker changed state: ``open`` or ``closed``."""


class RemoteStats:
    """Thread-safe counters of one tier, mirrored to its observer."""

    def __init__(self, observer: Observer | None = None) -> None:
        self.observer = observer or Observer()
        self._lock = threading.Lock()
        self.bytes_in = 0
        self.bytes_out = 0
        self.hits: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.written: Counter[str] = Counter()
        self._observer_failed = False

    def _notify(self, method: str, *args: Any) -> None:
        try:
            getattr(self.observer, method)(*args)
        except Exception:
            if not self._observer_failed:
                self._observer_failed = True
                log.exception("remote: the metrics observer's %s failed; further failures are not logged", method)

    def request(self, op: str, seconds: float, outcome: str) -> None:
        with self._lock:
            if outcome == "hit":
                self.hits[op] += 1
            elif outcome == "miss":
                self.misses[op] += 1
            elif outcome == "ok":
                self.written[op] += 1
        self._notify("request", op, seconds, outcome)

    def transferred(self, direction: str, n: int) -> None:
        with self._lock:
            if direction == "in":
                self.bytes_in += n
            else:
                self.bytes_out += n
        self._notify("transferred", direction, n)

    def drop(self, reason: str) -> None:
        with self._lock:
            self.dropped[reason] += 1
        self._notify("dropped", reason)

    def reject(self, reason: str) -> None:
        with self._lock:
            self.rejected[reason] += 1
        self._notify("rejected", reason)

    def error(self, op: str) -> None:
        with self._lock:
            self.errors[op] += 1
        self._notify("error", op)

    def skip(self, op: str) -> None:
        with self._lock:
            self.skipped[op] += 1
        self._notify("skipped", op)

    def circuit(self, state: str) -> None:
        self._notify("circuit", state)

    @property
    def dropped_total(self) -> int:
        with self._lock:
            return sum(self.dropped.values())

    def snapshot(self) -> dict[str, Any]:
        """A copy of every counter: plain ints and dicts, for JSON or assertions."""
        with self._lock:
            return {
                "bytes_in": self.bytes_in, "bytes_out": self.bytes_out,
                "hits": dict(self.hits), "misses": dict(self.misses), "written": dict(self.written),
                "dropped": dict(self.dropped), "rejected": dict(self.rejected),
                "errors": dict(self.errors), "skipped": dict(self.skipped),
            }
