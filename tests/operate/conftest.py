"""Fixtures of the operations tests: a bare store, daemons with short leases, and helpers."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cached.store import Store
from support import DaemonProcess

BUILD_TOKEN = "build-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-0123456789abcdef"
SHORT = ["--lease-seconds", "0.5", "--gc-grace-seconds", "0.5"]  # protections run out fast: sweeps are exact after a pause
PAUSE = 1.1  # longer than a lease and the grace of SHORT daemons (and the lease keeper's minimum hold)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store", grace_seconds=0, lease_seconds=0)
    yield s
    s.close()


@pytest.fixture(scope="module")
def short_daemon(tmp_path_factory: pytest.TempPathFactory, npm_cache: Path) -> Iterator[DaemonProcess]:
    """A daemon whose leases and grace last half a second, shared by a module's tests (each uses its own tenant)."""
    proc = DaemonProcess(tmp_path_factory.mktemp("short") / "root", npm_cache, args=SHORT).start()
    yield proc
    proc.stop()


def run_cli(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--token", token] if token else []
    return subprocess.run([sys.executable, "-m", "cached", *args, *extra], capture_output=True, text=True, timeout=300)


def scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the metrics endpoint: (name, sorted labels) -> value."""
    text = urllib.request.urlopen(f"http://{address}/metrics", timeout=30).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


def sample(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(predicate, timeout: float = 30.0, step: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)
