"""Failpoints: named places where a test can make the process die on the spot.

``CACHED_FAILPOINT=ingest.after_blob:3,index.before_commit`` makes the third
hit of ``ingest.after_blob`` (or the first of ``index.before_commit``) call
``os._exit(86)``: no cleanup, no flush, no atexit, as close to a power cut as a
process can get. Crash-safety tests use it to stop the store at exact instants
and check that a reopened store holds the old state or the new one.

This module must never do anything when the variable is unset beyond one
global lookup per hit, and must never raise: a failpoint is not an error path.
The configuration is read once at import; it is the only global mutable state
of the package (the hit counters).
"""

from __future__ import annotations

import os
import threading

EXIT_CODE = 86
ENV = "CACHED_FAILPOINT"


def _parse(text: str) -> dict[str, int]:
    points: dict[str, int] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, nth = item.partition(":")
        points[name.strip()] = int(nth) if nth.strip().isdigit() and int(nth) > 0 else 1
    return points


_POINTS: dict[str, int] = _parse(os.environ.get(ENV, ""))
_ACTIVE: bool = bool(_POINTS)
_HITS: dict[str, int] = {}
_LOCK = threading.Lock()


def failpoint(name: str) -> None:
    """Dies with exit code 86 on the configured hit of ``name``; otherwise returns at once."""
    if not _ACTIVE:
        return
    target = _POINTS.get(name)
    if target is None:
        return
    with _LOCK:
        hits = _HITS.get(name, 0) + 1
        _HITS[name] = hits
    if hits == target:
        os._exit(EXIT_CODE)


def configure(spec: str) -> None:
    """Replaces the configuration (for in-process tests); ``""`` turns every failpoint off."""
    global _POINTS, _ACTIVE
    with _LOCK:
        _POINTS = _parse(spec)
        _ACTIVE = bool(_POINTS)
        _HITS.clear()
