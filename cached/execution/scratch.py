"""Per-build scratch directories under the store root, removed when the build ends.

They hold the install dirs, and the overlay's upper and work dirs when
workspaces are not capped (with ``--build-write-size`` those are made on the
app's own mount instead: ``workspaces.py``). They live on the store's
filesystem so that what a build produced can be moved into the store without
a copy, and are cleared at startup like ``tmp/``.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def scratch_dir(root: Path, prefix: str) -> Iterator[Path]:
    path = root / "scratch" / f"{prefix}-{uuid.uuid4().hex[:12]}"
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def clear_scratch(root: Path) -> None:
    """At startup: nothing in scratch/ outlives the build that made it."""
    shutil.rmtree(root / "scratch", ignore_errors=True)
    (root / "scratch").mkdir(parents=True, exist_ok=True)
