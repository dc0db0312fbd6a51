"""Helpers of the warm-builder tests (a module, not conftest, so tests can import it)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from support import DaemonProcess, copy_fixture

SOURCEMAP_CONFIG = "  build: { sourcemap: true },\n  server: {"


def fixture_with_sourcemaps(dest: Path) -> Path:
    """A copy of the fixture app asking Vite for sourcemaps (the comparisons cover their paths too)."""
    app = copy_fixture(dest)
    config = app / "vite.config.ts"
    text = config.read_text()
    assert "  server: {" in text
    config.write_text(text.replace("  server: {", SOURCEMAP_CONFIG, 1))
    return app


def log_records(daemon: DaemonProcess, msg_prefix: str) -> list[dict]:
    found = []
    for line in daemon.log().splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if str(record.get("msg", "")).startswith(msg_prefix):
            found.append(record)
    return found


def wait_shadows(daemon: DaemonProcess, count: int, timeout: float = 180.0) -> list[dict]:
    """The first ``count`` shadow-check results (identical, MISMATCH or could not build) in the daemon's log."""
    deadline = time.monotonic() + timeout
    while True:
        found = log_records(daemon, "warm shadow check")
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"only {len(found)} of {count} shadow checks ended:\n{daemon.log()[-4000:]}"
        time.sleep(0.2)
