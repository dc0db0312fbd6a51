"""Single flight: identical concurrent work runs once; every caller gets its result.

The work runs in its own task. A caller that goes away (its RPC cancelled)
only stops waiting; the work is cancelled when its last waiter leaves, so one
impatient client never fails the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
E = TypeVar("E")


@dataclass
class Flight(Generic[T, E]):
    task: asyncio.Task[T]
    waiters: int = 0
    listeners: list[Callable[[E], None]] = field(default_factory=list)

    def publish(self, event: E) -> None:
        """Sends an event of the work (a log line, a phase) to everyone waiting on it."""
        for listener in list(self.listeners):
            listener(event)


class SingleFlight(Generic[T, E]):
    def __init__(self) -> None:
        self._flights: dict[Hashable, Flight[T, E]] = {}

    def in_flight(self, key: Hashable) -> bool:
        return key in self._flights

    async def run(
        self,
        key: Hashable,
        work: Callable[[Flight[T, E]], Awaitable[T]],
        listener: Callable[[E], None] | None = None,
    ) -> tuple[T, bool]:
        """Returns (result, coalesced): coalesced is True when another caller's work answered."""
        flight = self._flights.get(key)
        coalesced = flight is not None
        if flight is None:
            loop = asyncio.get_running_loop()
            holder: list[Flight[T, E]] = []
            task = loop.create_task(self._run_work(key, work, holder))
            flight = Flight(task)
            holder.append(flight)
            self._flights[key] = flight
        flight.waiters += 1
        if listener is not None:
            flight.listeners.append(listener)
        try:
            return await asyncio.shield(flight.task), coalesced
        except asyncio.CancelledError:
            if not flight.task.done():
                flight.waiters -= 1
                if listener is not None:
                    flight.listeners.remove(listener)
                if flight.waiters == 0:
                    flight.task.cancel()
            raise

    async def _run_work(self, key: Hashable, work: Callable[[Flight[T, E]], Awaitable[T]], holder: list[Flight[T, E]]) -> T:
        await asyncio.sleep(0)  # let run() register the flight before the work starts
        try:
            return await work(holder[0])
        finally:
            if self._flights.get(key) is holder[0]:
                del self._flights[key]
