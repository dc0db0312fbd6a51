"""Helpers of the store's tests (a module of its own: several conftest.py files share that name)."""

from __future__ import annotations

import os
from pathlib import Path


def make_sample_tree(root: Path, *, tag: str = "") -> Path:
    """Files, an executable, nested dirs, an empty dir, relative and absolute symlinks, duplicates."""
    (root / "src" / "lib").mkdir(parents=True)
    (root / "src" / "main.ts").write_text(f"console.log('main {tag}')\n")
    (root / "src" / "lib" / "util.ts").write_text("export const x = 1\n")
    (root / "src" / "lib" / "same.ts").write_text("export const x = 1\n")  # same content as util.ts
    (root / "bin").mkdir()
    (root / "bin" / "run").write_text("#!/bin/sh\necho run\n")
    os.chmod(root / "bin" / "run", 0o755)
    (root / "empty" / "nested").mkdir(parents=True)
    (root / "big.bin").write_bytes(os.urandom(3 << 20))
    (root / "zero").write_bytes(b"")
    os.symlink("src/main.ts", root / "link-rel")
    os.symlink("/nonexistent/target", root / "link-abs")
    os.symlink("lib", root / "src" / "lib-link")
    return root


def snapshot(root: Path) -> dict[str, tuple[str, object, int]]:
    """path -> (kind, bytes or target, mode bits that matter) for comparing trees."""
    out: dict[str, tuple[str, object, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            st = full.lstat()
            if full.is_symlink():
                out[rel] = ("link", os.readlink(full), 0)
            elif full.is_dir():
                out[rel] = ("dir", None, 0)
            else:
                out[rel] = ("file", full.read_bytes(), int(bool(st.st_mode & 0o100)))
    return out
