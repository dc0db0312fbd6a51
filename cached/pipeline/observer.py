"""What the pipeline tells the rest of the daemon about its builds (metrics, app history).

The pipeline calls these after it decided, so an observer can never change a
build's outcome; implementations must not raise and must not block the event
loop (queue writes, do not wait for them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from cached.execution.events import EventStream
from cached.request.spec import BuildSpec
from cached.digest import Digest
from cached.v1 import cached_pb2, records_pb2


class BuildObserver(Protocol):
    def app_recorded(
        self, spec: BuildSpec, sources: Digest, record: records_pb2.AppRecord,
        previous: records_pb2.AppRecord | None, decisions: Sequence[cached_pb2.CacheDecision],
    ) -> None:
        """The app's record changed (a miss, or a hit on another action than its last)."""

    def build_ended(
        self, spec: BuildSpec, events: EventStream, result: cached_pb2.BuildResult | None, error: BaseException | None,
    ) -> None:
        """Once per build: with its result (``events.metrics`` holds its Metrics), or with the error (cancellation included)."""


class NullObserver:
    def app_recorded(self, *args: object) -> None:
        pass

    def build_ended(self, *args: object) -> None:
        pass
