"""Fixtures of every test: one npm cache and one shared daemon for the whole run, daemons of one test, a trap listener, Miniflare."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from egress_support import Trap
from support import REPO, DaemonProcess

MINIFLARE = REPO / "tools" / "miniflare"


@pytest.fixture(scope="session")
def npm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One npm download cache for every daemon of the session (packages are fetched once)."""
    path = tmp_path_factory.mktemp("npm-cache")
    path.chmod(0o777)
    return path


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory, npm_cache: Path) -> Iterator[DaemonProcess]:
    """A daemon shared by the tests that only need one running: its store accumulates."""
    proc = DaemonProcess(tmp_path_factory.mktemp("shared") / "root", npm_cache).start()
    yield proc
    proc.stop()


@pytest.fixture
def make_daemon(tmp_path: Path, npm_cache: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Daemons of one test: their own store root; stopped at the end."""
    started: list[DaemonProcess] = []

    def make(root: Path | None = None, **kwargs: object) -> DaemonProcess:
        proc = DaemonProcess(root or tmp_path / "root", npm_cache, **kwargs)  # type: ignore[arg-type]
        started.append(proc)
        return proc.start()

    yield make
    for proc in started:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.stop()


@pytest.fixture
def trap() -> Iterator[Trap]:
    """A listener on 127.0.0.1 standing for any other port of the host: it counts the connections made to it."""
    t = Trap()
    yield t
    t.close()


@pytest.fixture(scope="session")
def miniflare_tools() -> Path:
    """Miniflare pinned in tools/miniflare, installed once with `npm ci` (node_modules is not committed)."""
    if not (MINIFLARE / "node_modules" / "miniflare" / "package.json").is_file():
        if shutil.which("npm") is None:
            pytest.fail("npm is needed to install Miniflare for the deploy tests")
        out = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=MINIFLARE, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, f"npm ci in {MINIFLARE} failed:\n{out.stderr[-3000:]}"
    return MINIFLARE
