"""The root lock: one process per store root.

LMDB and the blob directories assume a single writer process (the group-commit
thread, the in-memory leases and last-access times all live in it), so a second
daemon on the same root must fail at once with a message a person can act on.
This module must never block waiting for the lock, and never remove the lock
file (removing it would let two processes each lock a different inode).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from pathlib import Path

from cached.store.errors import StoreLockedError

log = logging.getLogger("cached.store.lock")


class RootLock:
    """An exclusive, non-blocking ``flock`` on ``root/lock`` holding the owner's pid."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_pid(fd)
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
                who = f"process {holder}" if holder else "another process"
                raise StoreLockedError(
                    f"store root {self.root} is locked by {who} (lock file {self.path}); "
                    "only one daemon may use a store root: stop the other one or choose another root"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        log.debug("locked %s", self.path)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None
