"""In-memory protections against the sweep: leases, in-flight ingests, recent puts.

A blob may be on disk without any root naming it yet (an ingest in progress,
a build between its last put and its ``put_root``), or a root may have been
evicted while a client still reads what a hit returned. These records tell the
sweep to keep such blobs. They are deliberately not persisted: after a restart
nothing is in flight, and a lease is a courtesy to live clients only.

This module must never touch the disk or the index, and every method must be
safe from any thread (the sweep checks ``guard`` under the same lock as puts
take, so a put that revives a blob and the sweep that would delete it cannot
interleave).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from cached.digest import Digest

PRUNE_EVERY = 1 << 17  # bounded memory for the in-memory maps between sweeps


@dataclass
class SweepWatch:
    """What roots committed during a running sweep named (the sweep marks them too)."""

    blobs: set[bytes] = field(default_factory=set)
    trees: list[Digest] = field(default_factory=list)


class Protection:
    def __init__(self, *, grace_seconds: float) -> None:
        self.lock = threading.Lock()
        self.grace_ns = int(grace_seconds * 1e9)
        self._ingests: dict[int, int] = {}
        self._ids = itertools.count()
        self._last_put: dict[bytes, int] = {}
        self._touches = 0
        self.sweep_horizon: int | None = None
        self._blob_leases: dict[bytes, float] = {}
        self._tree_leases: dict[Digest, float] = {}
        self.watch: SweepWatch | None = None
        self._roots_in_flight: dict[int, tuple[tuple[Digest, ...], tuple[Digest, ...]]] = {}

    # -- puts and ingests ----------------------------------------------------------
    def touch(self, key: bytes) -> None:
        """Records that ``key`` was put (new or already present) just now. Caller holds ``lock``."""
        now = time.time_ns()
        self._last_put[key] = now
        self._touches += 1
        if self._touches >= PRUNE_EVERY:
            # Bound the map in a daemon that rarely sweeps; never drop what a running sweep needs.
            self._touches = 0
            horizon = now - self.grace_ns
            if self._ingests:
                horizon = min(horizon, min(self._ingests.values()))
            if self.sweep_horizon is not None:
                horizon = min(horizon, self.sweep_horizon)
            self._last_put = {k: t for k, t in self._last_put.items() if t >= horizon}

    @contextmanager
    def ingesting(self) -> Iterator[int]:
        """Everything put from now until the block ends (and after, until the oldest ingest ends) is kept."""
        start = time.time_ns()
        with self.lock:
            ident = next(self._ids)
            self._ingests[ident] = start
        try:
            yield start
        finally:
            with self.lock:
                self._ingests.pop(ident, None)

    def oldest_ingest_ns(self) -> int | None:
        with self.lock:
            return min(self._ingests.values(), default=None)

    def horizon_ns(self, now_ns: int) -> int:
        """Blobs created or put at or after this instant are kept by a sweep starting at ``now_ns``."""
        oldest = self.oldest_ingest_ns()
        horizon = now_ns - self.grace_ns
        return horizon if oldest is None else min(horizon, oldest)

    def put_since(self, key: bytes, horizon_ns: int) -> bool:
        return self._last_put.get(key, -1) >= horizon_ns

    def last_put_ns(self, key: bytes) -> int:
        """When ``key`` was last put (0: not since the last sweep forgot it)."""
        return self._last_put.get(key, 0)

    def forget_puts_before(self, horizon_ns: int) -> None:
        with self.lock:
            self._last_put = {k: t for k, t in self._last_put.items() if t >= horizon_ns}

    # -- leases ---------------------------------------------------------------------
    def lease(self, blobs: Iterable[Digest], trees: Iterable[Digest], seconds: float) -> None:
        blobs, trees = tuple(blobs), tuple(trees)
        until = time.monotonic() + seconds
        with self.lock:
            for d in blobs:
                if self._blob_leases.get(d.key, 0.0) < until:
                    self._blob_leases[d.key] = until
            for t in trees:
                if self._tree_leases.get(t, 0.0) < until:
                    self._tree_leases[t] = until
            if self.watch is not None:
                self.watch.blobs.update(d.key for d in blobs)
                self.watch.trees.extend(trees)
            if len(self._blob_leases) + len(self._tree_leases) > PRUNE_EVERY:
                now = time.monotonic()
                self._blob_leases = {k: t for k, t in self._blob_leases.items() if t > now}
                self._tree_leases = {k: t for k, t in self._tree_leases.items() if t > now}

    def leased(self) -> tuple[set[bytes], list[Digest]]:
        """The live leases (expired ones are dropped here)."""
        now = time.monotonic()
        with self.lock:
            self._blob_leases = {k: t for k, t in self._blob_leases.items() if t > now}
            self._tree_leases = {k: t for k, t in self._tree_leases.items() if t > now}
            return set(self._blob_leases), list(self._tree_leases)

    def lease_ends(self) -> tuple[dict[bytes, int], dict[Digest, int]]:
        """When each live lease ends, as wall-clock nanoseconds (blob leases, tree leases)."""
        mono, wall = time.monotonic(), time.time_ns()
        with self.lock:
            blobs = {k: wall + int((t - mono) * 1e9) for k, t in self._blob_leases.items() if t > mono}
            trees = {k: wall + int((t - mono) * 1e9) for k, t in self._tree_leases.items() if t > mono}
        return blobs, trees

    def is_leased(self, key: bytes) -> bool:
        return self._blob_leases.get(key, 0.0) > time.monotonic()

    # -- roots committed while a sweep runs ---------------------------------------------
    def begin_root(self, blobs: Iterable[Digest], trees: Iterable[Digest]) -> int:
        """Called before a root is submitted: a sweep starting before it commits will mark its refs."""
        blobs, trees = tuple(blobs), tuple(trees)
        with self.lock:
            ident = next(self._ids)
            self._roots_in_flight[ident] = (blobs, trees)
            if self.watch is not None:
                self.watch.blobs.update(d.key for d in blobs)
                self.watch.trees.extend(trees)
        return ident

    def end_root(self, ident: int) -> None:
        with self.lock:
            self._roots_in_flight.pop(ident, None)

    def start_watch(self, horizon_ns: int) -> SweepWatch:
        """Begins recording refs for a sweep; includes roots already on their way to a commit."""
        with self.lock:
            self.sweep_horizon = horizon_ns
            watch = SweepWatch()
            for blobs, trees in self._roots_in_flight.values():
                watch.blobs.update(d.key for d in blobs)
                watch.trees.extend(trees)
            self.watch = watch
            return watch

    def stop_watch(self) -> None:
        with self.lock:
            self.watch = None
            self.sweep_horizon = None
