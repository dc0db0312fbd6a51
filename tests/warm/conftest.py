"""A daemon for the warm-builder tests: every warm result is also rebuilt cold (shadow share 1.0)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support import DaemonProcess


@pytest.fixture(scope="module")
def warm_daemon(tmp_path_factory: pytest.TempPathFactory, npm_cache: Path) -> Iterator[DaemonProcess]:
    proc = DaemonProcess(tmp_path_factory.mktemp("warm") / "root", npm_cache, args=["--warm-shadow-share", "1.0"]).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def session_daemon(tmp_path_factory: pytest.TempPathFactory, npm_cache: Path) -> Iterator[DaemonProcess]:
    """Warm builders that keep a watch session (``--warm-rebuild session``), every result also rebuilt cold."""
    proc = DaemonProcess(tmp_path_factory.mktemp("session") / "root", npm_cache,
                         args=["--warm-shadow-share", "1.0", "--warm-rebuild", "session"]).start()
    yield proc
    proc.stop()
