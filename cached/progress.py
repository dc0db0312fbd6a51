"""Shows a build's event stream in a terminal: a progress bar for phases, log lines, decisions."""

from __future__ import annotations

import sys
from typing import TextIO

from cached.v1 import cached_pb2

RESULTS = {cached_pb2.CacheDecision.HIT: "hit", cached_pb2.CacheDecision.MISS: "miss", cached_pb2.CacheDecision.COALESCED: "coalesced"}
BAR = 24


class ProgressView:
    def __init__(self, stream: TextIO = sys.stderr, show_logs: bool = True) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.show_logs = show_logs
        self._bar_shown = False

    def _clear(self) -> None:
        if self._bar_shown:
            self.stream.write("\r\033[K")
            self._bar_shown = False

    def _bar(self, name: str, progress: float) -> None:
        filled = int(BAR * max(0.0, min(1.0, progress)))
        self.stream.write(f"\r\033[K[{'#' * filled}{'-' * (BAR - filled)}] {progress * 100:3.0f}% {name}")
        self.stream.flush()
        self._bar_shown = True

    def __call__(self, event: cached_pb2.BuildEvent) -> None:
        kind = event.WhichOneof("event")
        if kind == "phase":
            p = event.phase
            if self.tty:
                self._bar(p.name, p.progress)
            elif p.state == cached_pb2.Phase.FINISHED:
                self.stream.write(f"phase {p.name}: {p.elapsed_ms:.1f} ms\n")
        elif kind == "log" and self.show_logs:
            self._clear()
            self.stream.write(f"  {event.log.source}| {event.log.line}\n")
        elif kind == "decision":
            self._clear()
            d = event.decision
            detail = f" ({d.detail})" if d.detail else ""
            self.stream.write(f"cache {d.layer}: {RESULTS.get(d.result, '?')} [{d.tier}] {d.reason}{detail}\n")
        elif kind == "result":
            self._clear()
        self.stream.flush()

    def done(self) -> None:
        self._clear()
        self.stream.flush()
