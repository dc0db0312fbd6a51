"""Nothing slow on the event loop: hits keep flowing while a large upload and a scrape loop run."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cached_client import Client
from operate_support import sample, scrape
from support import WRITE_DIST, DaemonProcess, tiny_app

UPLOAD_BYTES = 200 << 20
SMALL_BLOBS = 10_000  # a store with many blob records: a scrape that walked them would show


@pytest.fixture
def metrics_daemon(tmp_path: Path, npm_cache: Path) -> Iterator[DaemonProcess]:
    proc = DaemonProcess(tmp_path / "root", npm_cache, args=["--metrics-listen", "127.0.0.1:0"]).start()
    yield proc
    proc.stop()


def test_hits_succeed_during_a_large_upload_and_a_scrape_loop(metrics_daemon: DaemonProcess) -> None:
    files = tiny_app(WRITE_DIST, extra={"src/a.txt": b"one"})
    with Client(metrics_daemon.address) as client:
        assert client.build(files=files, app="lag", tenant="t1").cache == "miss"
        client.upload_missing("t1", [f"small blob {i}".encode() for i in range(SMALL_BLOBS)])
        metrics = client.stats_response().metrics_address
    big = os.urandom(UPLOAD_BYTES)
    before = scrape(metrics)
    done = threading.Event()
    errors: list[BaseException] = []
    hits: list[str] = []
    scrapes: list[float] = []

    def upload() -> None:
        try:
            with Client(metrics_daemon.address) as c:
                assert len(c.upload_missing("t1", [big])) == 1
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)
        finally:
            done.set()

    def scrape_loop() -> None:
        try:
            while not done.is_set():
                scrapes.append(sample(scrape(metrics), "cached_store_blobs"))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    def hit_loop() -> None:
        try:
            with Client(metrics_daemon.address) as c:
                while not done.is_set() or len(hits) < 20:
                    hits.append(c.build(files=files, app="lag", tenant="t1").cache)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=f) for f in (upload, scrape_loop, hit_loop)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    seconds = time.monotonic() - started
    assert not errors, errors
    assert hits and all(cache == "hit" for cache in hits), hits
    after = scrape(metrics)
    ticks = sample(after, "cached_event_loop_lag_seconds_count") - sample(before, "cached_event_loop_lag_seconds_count")
    print(f"\n{len(hits)} hits and {len(scrapes)} scrapes during a {UPLOAD_BYTES >> 20} MB upload ({seconds:.1f} s, "
          f"{SMALL_BLOBS} small blobs in the store): worst event-loop lag at most {worst_lag(before, after) * 1000:g} ms "
          f"over {ticks:.0f} ticks (worst since start {sample(after, 'cached_event_loop_lag_max_seconds') * 1000:.1f} ms)")
    assert ticks > 0  # the daemon measures its loop (reported only: timings are never asserted)


def worst_lag(before: dict, after: dict) -> float:  # type: ignore[type-arg]
    """The smallest histogram bound that holds every tick between two scrapes: the window's worst lag, rounded up."""
    def bucket(samples: dict, le: str) -> float:  # type: ignore[type-arg]
        return sample(samples, "cached_event_loop_lag_seconds_bucket", le=le)
    bounds = sorted({dict(labels)["le"] for name, labels in after if name == "cached_event_loop_lag_seconds_bucket"}, key=float)
    total = bucket(after, "+Inf") - bucket(before, "+Inf")
    return next(float(le) for le in bounds if bucket(after, le) - bucket(before, le) >= total)
