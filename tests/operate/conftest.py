"""Fixtures of the operations tests: a bare store and daemons with short leases (helpers: operate_support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cached.store import Store
from operate_support import SHORT
from support import DaemonProcess

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
