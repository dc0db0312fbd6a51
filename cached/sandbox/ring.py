"""Bounded buffering of a child's output.

Everything here is bounded: a child that prints gigabytes, or one endless
line, must never make the daemon's memory grow. Nothing here may block the
drain loop (a slow consumer loses old lines, it never slows the child).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator

DEFAULT_TAIL_LINES = 400
MAX_LINE_BYTES = 16 * 1024
_TRUNCATED = " [line truncated]"


class LineSplitter:
    """Bytes in, complete text lines out; over-long lines are cut, not kept."""

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._max = max_line_bytes
        self._buf = bytearray()
        self._dropping = False  # inside an over-long line already emitted

    def feed(self, data: bytes) -> list[str]:
        lines: list[str] = []
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            self._take(data[start:nl], lines, end=True)
            start = nl + 1
        self._take(data[start:], lines, end=False)
        return lines

    def close(self) -> list[str]:
        lines: list[str] = []
        if self._buf and not self._dropping:
            lines.append(_decode(bytes(self._buf)))
        self._buf.clear()
        self._dropping = False
        return lines

    def _take(self, piece: bytes, lines: list[str], end: bool) -> None:
        if not self._dropping:
            self._buf += piece
            if len(self._buf) > self._max:
                lines.append(_decode(bytes(self._buf[: self._max])) + _TRUNCATED)
                self._buf.clear()
                self._dropping = True
        if end:
            if not self._dropping:
                lines.append(_decode(bytes(self._buf)))
            self._buf.clear()
            self._dropping = False


def _decode(raw: bytes) -> str:
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw.decode("utf-8", errors="replace")


class Tail:
    """The last N lines of all streams, in arrival order (the error tail)."""

    def __init__(self, max_lines: int = DEFAULT_TAIL_LINES) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=max_lines)

    def add(self, text: str) -> None:
        self._lines.append(text)

    def lines(self) -> list[str]:
        return list(self._lines)


class QueueSink:
    """An OutputSink for a consumer that may be slower than the child.

    ``line`` never blocks: when ``max_lines`` are waiting, the oldest is
    dropped and counted in ``dropped`` (the run's tail still has the end).
    Iterate it (``async for stream, text in sink``) until ``close()``.
    Must be used from the event loop thread that runs the sandbox.
    """

    def __init__(self, max_lines: int = 10_000) -> None:
        self._items: collections.deque[tuple[str, str]] = collections.deque(maxlen=max_lines)
        self._event = asyncio.Event()
        self._closed = False
        self.dropped = 0

    def line(self, stream: str, text: str) -> None:
        if len(self._items) == self._items.maxlen:
            self.dropped += 1
        self._items.append((stream, text))
        self._event.set()

    def close(self) -> None:
        self._closed = True
        self._event.set()

    async def __aiter__(self) -> AsyncIterator[tuple[str, str]]:
        while True:
            while self._items:
                yield self._items.popleft()
            if self._closed:
                return
            self._event.clear()
            await self._event.wait()
