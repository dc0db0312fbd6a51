"""The write queue and the circuit breaker on their own: bounds, deduplication, replacement, and the breaker's states."""

from __future__ import annotations

import threading

from cached.remote.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from cached.remote.writer import CLOSED as QUEUE_CLOSED, DUPLICATE, FULL, QUEUED, TOO_MANY_BYTES, Job, WriteQueue


def _blocked_queue(**kwargs: int) -> tuple[WriteQueue, threading.Event, list[str]]:
    """A queue whose one thread is held inside the first job until the event is set."""
    release, started, done = threading.Event(), threading.Event(), []

    def hold() -> None:
        started.set()
        release.wait(10)

    q = WriteQueue(threads=1, **kwargs)  # type: ignore[arg-type]
    assert q.offer(Job("first", 1, hold)) == QUEUED
    assert started.wait(5)
    return q, release, done


def test_bounds_duplicates_and_replacement() -> None:
    q, release, done = _blocked_queue(max_entries=2, max_bytes=100)
    assert q.offer(Job("a", 10, lambda: done.append("a1"))) == QUEUED
    assert q.offer(Job("a", 10, lambda: done.append("a2"))) == DUPLICATE
    assert q.offer(Job("a", 20, lambda: done.append("a3")), replace=True) == QUEUED
    assert q.queued_bytes == 1 + 20
    assert q.offer(Job("big", 90, lambda: done.append("big"))) == TOO_MANY_BYTES
    assert q.offer(Job("b", 10, lambda: done.append("b"))) == QUEUED
    assert q.offer(Job("c", 1, lambda: done.append("c"))) == FULL
    assert q.depth == 2
    release.set()
    assert q.flush(5)
    assert done == ["a3", "b"] and q.depth == 0 and q.queued_bytes == 0
    q.close(1)
    assert q.offer(Job("late", 1, lambda: None)) == QUEUE_CLOSED


def test_close_returns_what_it_could_not_write() -> None:
    q, release, done = _blocked_queue(max_entries=10, max_bytes=100)
    q.offer(Job("x", 1, lambda: done.append("x")))
    left = q.close(timeout=0.2)
    assert [j.name for j in left] == ["x"]
    release.set()
    assert done == []


def test_a_job_that_raises_does_not_stop_the_writer() -> None:
    q = WriteQueue(10, 100, threads=1)
    done: list[str] = []

    def boom() -> None:
        raise RuntimeError("bug")

    q.offer(Job("boom", 1, boom))
    q.offer(Job("next", 1, lambda: done.append("next")))
    assert q.flush(5) and done == ["next"]
    q.close(1)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_probes_once_and_closes() -> None:
    clock, changes = Clock(), []
    b = CircuitBreaker(3, 30.0, clock=clock, on_change=changes.append)
    for _ in range(2):
        assert b.allow()
        b.failure()
    b.success()  # a success resets the count: failures must be consecutive
    for _ in range(3):
        assert b.allow()
        b.failure()
    assert b.state == OPEN and changes == [OPEN]
    assert not b.allow()
    clock.now += 30
    assert b.state == HALF_OPEN
    assert b.allow() and not b.allow()  # one probe at a time
    b.failure()
    assert b.state == OPEN and b.opened == 2
    clock.now += 29
    assert not b.allow()
    clock.now += 1
    assert b.allow()
    b.success()
    assert b.state == CLOSED and changes == [OPEN, OPEN, CLOSED]
    assert b.allow() and b.allow()
