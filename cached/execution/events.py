"""The event stream of one build: phases, log lines, decisions, metrics, the result.

Log lines are the only events that can come faster than a client reads, so
they alone are dropped when the stream is backed up (with a note saying how
many); every other event is always delivered, in order.

Until the action cache's decision (or for HOLD_S at most) events are held
back. On a hit, the phases held (validate, lookup: well under a millisecond)
are dropped and the answer is three messages: the decision, the metrics (whose
``phase_ms`` has those phases) and the result. gRPC sends every message of a
stream separately through its poller thread, and under concurrent hits these
sends are most of what a hit costs the daemon. On a miss, or once HOLD_S has
passed, the held events are sent as they came, before anything else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from cached.v1 import cached_pb2

Event = cached_pb2.BuildEvent
MAX_QUEUED_LOGS = 2000
HOLD_S = 0.05  # longer than a hit takes; a client sees a slow lookup's phases after this


class EventStream:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._queued_logs = 0
        self._dropped = 0
        self.phase_ms: dict[str, float] = {}
        self.decisions: list[cached_pb2.CacheDecision] = []
        self.metrics: cached_pb2.Metrics | None = None  # the build's Metrics, once the pipeline emitted them
        self._phase_started: dict[str, float] = {}
        self._closed = False
        self._held: list[Event] | None = []
        self._hold_timer: asyncio.TimerHandle | None = None

    def emit(self, event: Event) -> None:
        if self._closed:
            return
        if self._held is not None:
            self._held.append(event)
            if self._hold_timer is None:
                try:
                    self._hold_timer = asyncio.get_running_loop().call_later(HOLD_S, self.release)
                except RuntimeError:  # no loop (a stream used outside the daemon): nothing to wait for
                    self.release()
            return
        self._send(event)

    def release(self, drop_phases: bool = False) -> None:
        """Sends what was held (without its phases when ``drop_phases``) and holds nothing more."""
        held, self._held = self._held, None
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        for event in held or ():
            if not (drop_phases and event.HasField("phase")):
                self._send(event)

    def _send(self, event: Event) -> None:
        if event.HasField("log"):
            if self._queued_logs >= MAX_QUEUED_LOGS:
                self._dropped += 1
                return
            self._queued_logs += 1
        elif self._dropped:
            dropped, self._dropped = self._dropped, 0
            note = cached_pb2.Log(stream=cached_pb2.Log.STDERR, line=f"[cached] {dropped} log lines not sent: the client read too slowly (the full log is stored with the result)", source="cached")
            self._queue.put_nowait(Event(log=note))
        self._queue.put_nowait(event)

    def log(self, stream: str, line: str, source: str) -> None:
        kind = cached_pb2.Log.STDERR if stream == "stderr" else cached_pb2.Log.STDOUT
        self.emit(Event(log=cached_pb2.Log(stream=kind, line=line, source=source)))

    def phase_started(self, name: str, progress: float) -> None:
        self._phase_started[name] = time.perf_counter()
        self.emit(Event(phase=cached_pb2.Phase(name=name, state=cached_pb2.Phase.STARTED, progress=progress)))

    def phase_progress(self, name: str, progress: float) -> None:
        self.emit(Event(phase=cached_pb2.Phase(name=name, state=cached_pb2.Phase.PROGRESS, progress=progress)))

    def phase_finished(self, name: str, progress: float) -> float:
        started = self._phase_started.pop(name, None)
        elapsed = (time.perf_counter() - started) * 1000 if started is not None else 0.0
        self.phase_ms[name] = self.phase_ms.get(name, 0.0) + elapsed
        self.emit(Event(phase=cached_pb2.Phase(name=name, state=cached_pb2.Phase.FINISHED, progress=progress, elapsed_ms=elapsed)))
        return elapsed

    def decision(self, layer: str, result: int, reason: str = "", detail: str = "", tier: str = "local") -> cached_pb2.CacheDecision:
        d = cached_pb2.CacheDecision(layer=layer, result=result, tier=tier, reason=reason, detail=detail)
        self.decisions.append(d)
        if self._held is not None and layer == "action":
            self.release(drop_phases=result == cached_pb2.CacheDecision.HIT)
        self.emit(Event(decision=d))
        return d

    def close(self) -> None:
        if not self._closed:
            self.release()
            self._closed = True
            self._queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            if event.HasField("log"):
                self._queued_logs -= 1
            yield event


class Phase:
    """``with Phase(events, "install", 0.2, 0.7):`` marks a phase's start and end."""

    def __init__(self, events: EventStream, name: str, start: float, end: float) -> None:
        self.events, self.name, self.start, self.end = events, name, start, end

    def __enter__(self) -> "Phase":
        self.events.phase_started(self.name, self.start)
        return self

    def __exit__(self, *exc: object) -> None:
        self.events.phase_finished(self.name, self.end)


class FlightEvents:
    """Publishes a shared step's events to every build waiting on it, each into its own stream.

    A step that runs once for several builds (single flight) reports through
    this, so every waiter sees the phases and log lines as its own.
    """

    def __init__(self, flight: Any) -> None:
        self.flight = flight

    def log(self, stream: str, line: str, source: str) -> None:
        self.flight.publish(lambda s: s.log(stream, line, source))

    def phase_started(self, name: str, progress: float) -> None:
        self.flight.publish(lambda s: s.phase_started(name, progress))

    def phase_progress(self, name: str, progress: float) -> None:
        self.flight.publish(lambda s: s.phase_progress(name, progress))

    def phase_finished(self, name: str, progress: float) -> float:
        self.flight.publish(lambda s: s.phase_finished(name, progress))
        return 0.0

    def decision(self, layer: str, result: int, reason: str = "", detail: str = "", tier: str = "local") -> None:
        self.flight.publish(lambda s: s.decision(layer, result, reason, detail, tier))
