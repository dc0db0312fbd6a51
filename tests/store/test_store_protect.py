"""In-memory protections: pruning never drops what a running sweep still needs."""

from __future__ import annotations

import time

import pytest

from cached.store import protect
from cached.store.protect import Protection


def test_pruning_keeps_puts_a_running_sweep_may_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protect, "PRUNE_EVERY", 4)
    p = Protection(grace_seconds=0)
    sweep_horizon = time.time_ns()
    p.start_watch(sweep_horizon)
    with p.lock:
        p.touch(b"after-sweep-start")
    time.sleep(0.001)
    with p.lock:
        for i in range(8):  # triggers two prunes
            p.touch(f"k{i}".encode())
    assert p.put_since(b"after-sweep-start", sweep_horizon)
    p.stop_watch()
    time.sleep(0.001)
    with p.lock:
        for i in range(8):
            p.touch(f"j{i}".encode())
    assert not p.put_since(b"after-sweep-start", sweep_horizon)  # no sweep needs it any more


def test_ingest_horizon_and_roots_in_flight() -> None:
    p = Protection(grace_seconds=0)
    assert p.oldest_ingest_ns() is None
    with p.ingesting() as start:
        assert p.horizon_ns(time.time_ns()) == start
    assert p.oldest_ingest_ns() is None
    from cached.digest import Hasher

    d = Hasher().bytes(b"x")
    ident = p.begin_root([d], [])
    watch = p.start_watch(time.time_ns())
    assert d.key in watch.blobs  # a root on its way to a commit is marked by a sweep starting now
    p.end_root(ident)
    p.stop_watch()
