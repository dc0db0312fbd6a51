"""Fixtures of the store's tests: a fresh store per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cached.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """No grace and no automatic leases, so sweeps are exact unless a test asks otherwise."""
    s = Store.open(tmp_path / "store", grace_seconds=0, lease_seconds=0)
    yield s
    s.close()
