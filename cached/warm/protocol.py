"""The line protocol between the daemon and ``driver.mjs`` (see the driver's header).

One JSON object a line both ways. Requests carry an id; every event of a build
carries the id of the request that started it, so a line left over from an
earlier build (one the daemon gave up on) is never taken for this one's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

READY, START, FILE, PUBLIC, END, ERROR = "ready", "start", "file", "public", "end", "error"


@dataclass(frozen=True)
class Event:
    kind: str
    id: int
    data: dict[str, Any] = field(default_factory=dict)


def parse(line: str) -> Event | None:
    """An event, or None for a line that is not one (never raises)."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("ev"), str):
        return None
    ident = data.get("id", -1)
    return Event(data["ev"], ident if isinstance(ident, int) else -1, data)


def build_request(ident: int, changed: list[str] | None = None, removed: list[str] | None = None) -> bytes:
    """``changed`` and ``removed``: the app's paths the daemon wrote and deleted since
    the builder's last build; the driver rebuilds its session only when it can see
    that they are all it has to take in."""
    return (json.dumps({"op": "build", "id": ident, "changed": changed or [], "removed": removed or []}) + "\n").encode()


EXIT_REQUEST = b'{"op":"exit"}\n'
