"""Filesystem helpers the store's modules share: durability, forced removal, limits.

Nothing here may follow a symlink while removing, and nothing here fsyncs per
file: durability is one ``syncfs`` of the store's filesystem per batch.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import shutil
import stat
from pathlib import Path

log = logging.getLogger("cached.store.fs")

DEFAULT_LINK_MAX = 65000

_libc: ctypes.CDLL | None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    _syncfs = _libc.syncfs
    _syncfs.argtypes = [ctypes.c_int]
    _syncfs.restype = ctypes.c_int
except (OSError, AttributeError):  # pragma: no cover - non-glibc systems
    _libc = None


def syncfs(path: Path) -> None:
    """Flushes the whole filesystem holding ``path``: one call makes a batch of blobs durable."""
    if _libc is None:  # pragma: no cover
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def link_max(path: Path) -> int:
    """The filesystem's per-inode hardlink limit (ext4: 65000)."""
    try:
        value = os.pathconf(path, "PC_LINK_MAX")
    except (OSError, ValueError):
        return DEFAULT_LINK_MAX
    return value if value and value > 0 else DEFAULT_LINK_MAX


def make_writable_tree(path: Path) -> None:
    """Gives the owner write and search permission on every directory below ``path``.

    Materialised trees are 0555; a non-root process cannot unlink inside them
    until their directories are writable again.
    """
    for dirpath, dirnames, _ in os.walk(path, followlinks=False):
        os.chmod(dirpath, 0o755)
        for name in dirnames:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                os.chmod(full, 0o755)


def remove_tree(path: Path) -> None:
    """Removes a directory tree even when its directories are read-only; missing is fine."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    try:
        shutil.rmtree(path)
        return
    except PermissionError:
        pass
    make_writable_tree(path)
    shutil.rmtree(path, ignore_errors=False)


def clear_dir(path: Path) -> int:
    """Empties ``path`` (keeps the directory); returns how many entries went."""
    count = 0
    with os.scandir(path) as it:
        for entry in it:
            remove_tree(Path(entry.path))
            count += 1
    return count
