"""Leases that last exactly as long as the task that needs them (plus one lease period).

A store lease has a fixed length, but a build's use of its node_modules tree
lasts as long as the build. ``keep_leased`` renews a lease on what the current
task uses until that task ends (done, failed or cancelled); then the lease
simply runs out. So a purge or a collection while a build runs never removes
what it reads, and nothing stays pinned long after.

This module only renews leases in memory: it must never touch the index.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from cached.digest import Digest

if TYPE_CHECKING:
    from cached.store.store import Store

log = logging.getLogger("cached.store.leases")

MIN_HOLD_S = 1.0


def keep_leased(store: "Store", *, trees: Iterable[Digest] = (), blobs: Iterable[Digest] = ()) -> asyncio.Task[None]:
    """Leases now, then every half lease, for as long as the calling task runs. Call from a task."""
    trees, blobs = tuple(trees), tuple(blobs)
    hold = max(store.lease_seconds, MIN_HOLD_S)
    store.lease(blobs, trees, seconds=hold)
    owner = asyncio.current_task()

    async def renew() -> None:
        while True:
            await asyncio.sleep(hold / 2)
            store.lease(blobs, trees, seconds=hold)

    keeper = asyncio.get_running_loop().create_task(renew(), name="cached-lease-keeper")
    if owner is not None:
        owner.add_done_callback(lambda _: keeper.cancel())
    else:  # pragma: no cover - always called from a task
        keeper.cancel()
    return keeper
