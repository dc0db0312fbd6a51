"""A bucket that goes away mid-run: writes are dropped and counted, reads are misses, nothing raises; then it comes back.

No timed assertions: that a down bucket costs nothing is shown by the breaker
skipping requests (``skipped`` grows, ``errors`` stops growing).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from cached.digest import Hasher
from cached.remote.names import ac_kind
from cached.remote.tier import RemoteTier
from remote_support import SECRET, MotoS3

HASH = Hasher()
FAST = dict(connect_timeout_s=0.5, read_timeout_s=0.5, max_attempts=1, failure_threshold=3, cooldown_s=0.5)


@pytest.fixture
def own_server() -> Iterator[MotoS3]:
    server = MotoS3().start()
    yield server
    server.stop()


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_the_bucket_stops_and_starts_again(make_tier: Callable[..., RemoteTier], own_server: MotoS3,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bucket = own_server.new_bucket()
    tier = make_tier(server=own_server, url=f"s3://{bucket}/team-cache", **FAST)
    before = b"written while up"
    tier.put_blob(HASH.bytes(before), before)
    tier.put_record(ac_kind("acme"), "k1", b"result one")
    assert tier.flush(10)
    assert tier.get_record(ac_kind("acme"), "k1") == b"result one"

    own_server.stop()
    lost = [bytes([i]) * 100 for i in range(20)]
    for data in lost:
        assert tier.put_blob(HASH.bytes(data), data)  # queued: the failure comes later, on the writer thread
    tier.put_record("deps", "lost", b"manifest")
    assert tier.flush(30)
    dropped = tier.stats.snapshot()["dropped"]
    assert sum(dropped.values()) == len(lost) + 1
    assert set(dropped) <= {"bucket_error", "circuit_open"} and dropped.get("circuit_open", 0) > 0
    assert tier.breaker.state != "closed"

    # reads: misses, and once the breaker is open no request is even tried
    errors = tier.stats.snapshot()["errors"]
    assert tier.get_blob(HASH.bytes(before)) is None
    assert tier.get_record(ac_kind("acme"), "k1") is None
    assert tier.has_blobs([HASH.bytes(before)]) == set()
    assert tier.missing([HASH.bytes(before)]) == [HASH.bytes(before)]
    # four reads; at most one of them is the probe of a cooldown that ended meanwhile
    assert sum(tier.stats.snapshot()["skipped"].values()) >= 3
    assert sum(tier.stats.snapshot()["errors"].values()) <= sum(errors.values()) + 1

    own_server.start()  # the same port: moto keeps its buckets in this process
    after = b"written after the restart"
    assert _wait(lambda: tier.get_record(ac_kind("acme"), "k1") == b"result one")  # the probe, after the cooldown
    assert tier.breaker.state == "closed"
    assert tier.put_blob(HASH.bytes(after), after)
    assert tier.flush(10)
    assert tier.get_blob(HASH.bytes(after)) == after
    assert tier.stats.written["put_blob"] == 2
    assert tier.get_blob(HASH.bytes(lost[0])) is None  # what was dropped stays dropped
    assert any("consecutive failures" in r.getMessage() for r in caplog.records)
    assert SECRET not in caplog.text


def test_a_bucket_that_never_answers_times_out_then_is_skipped(make_tier: Callable[..., RemoteTier]) -> None:
    """A listener that accepts connections and never replies: each read waits for the read timeout, until the breaker opens."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    try:
        tier = make_tier(url="s3://silent-bucket/p", server=_Endpoint(silent.getsockname()[1]),  # type: ignore[arg-type]
                         **{**FAST, "cooldown_s": 60.0})
        for i in range(6):
            assert tier.get_record("deps", f"k{i}") is None
        snap = tier.stats.snapshot()
        assert snap["errors"] == {"get_record": 3}
        assert snap["skipped"] == {"get_record": 3}
        assert tier.put_record("deps", "k", b"v")
        assert tier.flush(10)
        assert tier.stats.dropped["circuit_open"] == 1
    finally:
        silent.close()


class _Endpoint:
    def __init__(self, port: int) -> None:
        self.endpoint = f"http://127.0.0.1:{port}"


def test_a_full_queue_drops_instead_of_waiting(make_tier: Callable[..., RemoteTier]) -> None:
    """The one writer thread is stuck on a bucket that never answers: the queue fills, and further writes are refused at once."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    try:
        tier = make_tier(url="s3://silent-bucket/p", server=_Endpoint(silent.getsockname()[1]),  # type: ignore[arg-type]
                         **{**FAST, "read_timeout_s": 2.0}, queue_entries=2, queue_bytes=1000, writer_threads=1)
        accepted = [tier.put_record("deps", f"k{i}", b"v") for i in range(10)]
        assert accepted[:2] == [True, True] and accepted.count(True) <= 3
        assert tier.stats.dropped["queue_full"] == accepted.count(False)
        assert tier.queue_depth in (1, 2)
        roomy = make_tier(url="s3://silent-bucket/p", server=_Endpoint(silent.getsockname()[1]),  # type: ignore[arg-type]
                          **FAST, queue_bytes=1000)
        big = b"x" * 2000
        assert roomy.put_blob(HASH.bytes(big), big) is False
        assert roomy.stats.snapshot()["dropped"] == {"queue_bytes": 1}
    finally:
        silent.close()
