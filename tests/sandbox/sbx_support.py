"""Helpers of the sandbox tests (a module, not conftest, so tests can import it)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": "UTC", "CI": "true"}


class ListSink:
    """Records every line; fine for tests whose output is small."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def line(self, stream: str, text: str) -> None:
        self.lines.append((stream, text))

    def of(self, stream: str) -> list[str]:
        return [t for s, t in self.lines if s == stream]


def processes_with(marker: str) -> list[int]:
    """Pids whose command line mentions ``marker`` (our leftover detector)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)
