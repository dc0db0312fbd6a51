"""The shared tier's side of the daemon's metrics: the tier's observer, fed from its threads.

``cached/remote`` reports each request, transfer, drop and rejection to an
``Observer``; this one turns them into Prometheus series beside the build's
(``cached_remote_*``), and keeps the queue depth as a gauge read at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

from cached.operate.metrics import BuildMetrics
from cached.remote.stats import Observer

REMOTE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RemoteMetrics(Observer):
    def __init__(self, metrics: BuildMetrics) -> None:
        r = metrics.registry
        self.errors = metrics.remote_errors
        self.requests = Histogram("cached_remote_request_seconds", "Shared tier requests, by operation and outcome", ["op", "outcome"], buckets=REMOTE_BUCKETS, registry=r)
        self.bytes = Counter("cached_remote_bytes", "Bytes to and from the shared tier (in: downloads, out: uploads)", ["direction"], registry=r)
        self.dropped_writes = Counter("cached_remote_dropped", "Writes to the shared tier not done (queue full, bucket down, read-only...)", ["reason"], registry=r)
        self.rejected_entries = Counter("cached_remote_rejected", "Entries read from the shared tier that failed their check (a miss)", ["reason"], registry=r)
        self.skipped_reads = Counter("cached_remote_skipped", "Shared tier requests not tried: the circuit breaker was open", ["op"], registry=r)
        self.breaker_open = Gauge("cached_remote_circuit_open", "1 while the shared tier's circuit breaker is open", registry=r)
        self.queue = Gauge("cached_remote_queue_depth", "Writes waiting for the shared tier", registry=r)
        for direction in ("in", "out"):
            self.bytes.labels(direction)

    def watch_queue(self, depth: Callable[[], int]) -> None:
        self.queue.set_function(depth)

    def request(self, op: str, seconds: float, outcome: str) -> None:
        self.requests.labels(op, outcome).observe(seconds)

    def transferred(self, direction: str, n: int) -> None:
        self.bytes.labels(direction).inc(n)

    def dropped(self, reason: str) -> None:
        self.dropped_writes.labels(reason).inc()

    def rejected(self, reason: str) -> None:
        self.rejected_entries.labels(reason).inc()

    def error(self, op: str) -> None:
        self.errors.labels(op).inc()

    def skipped(self, op: str) -> None:
        self.skipped_reads.labels(op).inc()

    def circuit(self, state: str) -> None:
        self.breaker_open.set(1 if state == "open" else 0)
