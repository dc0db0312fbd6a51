"""Finds and checks what a build emitted before it goes into the store.

Only regular files in the resolved output dir are outputs; a symlink or a
special file there fails the build (it could point anywhere on the host), and
so does a build that succeeded without emitting anything.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cached.errors import BuildFailed
from cached.request.paths import check_path


def check_outputs(out_dir: Path, shown_as: str) -> tuple[int, int]:
    """Returns (files, bytes) or raises BuildFailed naming the offending entry."""
    try:
        st = os.lstat(out_dir)
    except FileNotFoundError:
        raise BuildFailed(f"the build succeeded but wrote nothing to {shown_as}/; check build.outDir in the Vite config", []) from None
    if not stat.S_ISDIR(st.st_mode):
        raise BuildFailed(f"{shown_as} is not a directory", [])
    files = size = 0
    for dirpath, dirnames, filenames in os.walk(out_dir):
        for name in dirnames + filenames:
            full = Path(dirpath, name)
            rel = full.relative_to(out_dir).as_posix()
            mode = os.lstat(full).st_mode
            if stat.S_ISLNK(mode):
                raise BuildFailed(f"output {shown_as}/{rel} is a symlink; outputs must be regular files", [])
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                raise BuildFailed(f"output {shown_as}/{rel} is not a regular file", [])
            try:
                check_path(rel, output_dir="")
            except Exception as e:  # a name a client could not write back safely
                raise BuildFailed(f"output {shown_as}/{rel} has an unusable name: {e}", []) from None
            files += 1
            size += os.lstat(full).st_size
    if files == 0:
        raise BuildFailed(f"the build succeeded but {shown_as}/ is empty", [])
    return files, size
