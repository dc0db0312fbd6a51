"""Reads an app directory into the files a build request carries."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SKIPPED_DIRS = {"node_modules", ".git", ".cached"}


@dataclass(frozen=True)
class AppFile:
    path: str
    content: bytes
    executable: bool


def collect_files(app_dir: str | os.PathLike[str], output_dir: str = "dist") -> list[AppFile]:
    """Every regular file of the app, without node_modules, .git and the output dir.

    Symlinks are skipped: the daemon builds what a database would hold, files.
    """
    root = Path(app_dir)
    found: list[AppFile] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in SKIPPED_DIRS and not (rel_dir == Path(".") and d == output_dir) and not os.path.islink(os.path.join(dirpath, d))
        )
        for name in sorted(filenames):
            full = Path(dirpath, name)
            if full.is_symlink() or not full.is_file():
                continue
            rel = (rel_dir / name).as_posix()
            found.append(AppFile(rel, full.read_bytes(), os.access(full, os.X_OK)))
    return found
