"""Helpers of the operations tests: tokens, short protections, the CLI, the metrics endpoint.

A module of its own (not the conftest) so that tests of several directories can run in one pytest call."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

from support import sample, scrape  # noqa: F401  (the operations tests read metrics through these)

BUILD_TOKEN = "build-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-0123456789abcdef"
SHORT = ["--lease-seconds", "0.5", "--gc-grace-seconds", "0.5"]  # protections run out fast: sweeps are exact after a pause
PAUSE = 1.1  # longer than a lease and the grace of SHORT daemons (and the lease keeper's minimum hold)


def run_cli(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--token", token] if token else []
    return subprocess.run([sys.executable, "-m", "cached", *args, *extra], capture_output=True, text=True, timeout=300)



def wait_for(predicate, timeout: float = 30.0, step: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)
