"""Makes an app's workspace hold exactly the request's tree, and nothing else.

Everything is done relative to directory file descriptors opened with
O_NOFOLLOW, so a symlink that an earlier build planted (``src -> /etc``) is
removed, never followed. Unchanged files are left alone (compared by xxh3), so
their mtimes survive for tools that watch them. This module never writes
outside the workspace and never reads the store except through ``read_blob``.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cached.errors import LimitExceeded
from cached.request.spec import SourceFile
from cached.digest import Digest, fast_digest

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


@dataclass
class ReconcileReport:
    written: list[str]
    removed: list[str]
    unchanged: int


def _remove_entry(parent_fd: int, name: str) -> None:
    """Removes a file, symlink or whole directory below parent_fd without following links."""
    st = os.lstat(name, dir_fd=parent_fd)
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        try:
            os.chmod(fd, 0o755)
            for entry in os.listdir(fd):
                _remove_entry(fd, entry)
        finally:
            os.close(fd)
        os.rmdir(name, dir_fd=parent_fd)
    else:
        os.unlink(name, dir_fd=parent_fd)


def _open_dir(parent_fd: int, name: str, create: bool) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as e:
        if e.errno == errno.ENOENT and create:
            os.mkdir(name, 0o755, dir_fd=parent_fd)
        elif e.errno in (errno.ELOOP, errno.ENOTDIR) and create:
            _remove_entry(parent_fd, name)  # a symlink or a file where a directory must be
            os.mkdir(name, 0o755, dir_fd=parent_fd)
        else:
            raise
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)


def _same_content(parent_fd: int, name: str, want: SourceFile, fast: str | None) -> bool:
    try:
        st = os.lstat(name, dir_fd=parent_fd)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size != want.digest.size:
        return False
    if bool(st.st_mode & 0o100) != want.executable or fast is None:
        return False
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    with os.fdopen(fd, "rb") as f:
        return fast_digest(f.read()) == fast


class Workspace:
    """One app's working directory. Callers hold the app's lock while using it."""

    def __init__(self, path: Path, read_blob: Callable[[Digest], BinaryIO]) -> None:
        self.path = path
        self._read_blob = read_blob

    def reconcile(self, files: tuple[SourceFile, ...]) -> ReconcileReport:
        """Writes what differs, removes what the request does not name (node_modules and outputs included).
        A workspace whose filesystem fills up (a capped one: ``workspaces.py``) is ``LimitExceeded``."""
        try:
            return self._reconcile(files)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            raise LimitExceeded(
                "the app's files do not fit in its workspace: the build write limit is reached before the build starts; "
                "the daemon's operator can raise it with `cached serve --build-write-size`", limit="write",
            ) from None

    def _reconcile(self, files: tuple[SourceFile, ...]) -> ReconcileReport:
        self.path.mkdir(parents=True, exist_ok=True)
        wanted_dirs: set[str] = set()
        for f in files:
            parts = f.path.split("/")
            for i in range(1, len(parts)):
                wanted_dirs.add("/".join(parts[:i]))
        wanted = {f.path: f for f in files}
        report = ReconcileReport([], [], 0)
        root_fd = os.open(self.path, _DIR_FLAGS)
        try:
            self._prune(root_fd, "", wanted, wanted_dirs, report)
            dir_fds: dict[str, int] = {"": root_fd}
            try:
                for f in files:
                    parent, _, name = f.path.rpartition("/")
                    parent_fd = self._dir_fd(dir_fds, parent)
                    fast = fast_digest(f.content) if f.content is not None else None
                    if _same_content(parent_fd, name, f, fast):
                        report.unchanged += 1
                        continue
                    self._write(parent_fd, name, f)
                    report.written.append(f.path)
            finally:
                for key, fd in dir_fds.items():
                    if key:
                        os.close(fd)
        finally:
            os.close(root_fd)
        return report

    def _dir_fd(self, dir_fds: dict[str, int], rel: str) -> int:
        if rel in dir_fds:
            return dir_fds[rel]
        parent, _, name = rel.rpartition("/")
        fd = _open_dir(self._dir_fd(dir_fds, parent), name, create=True)
        dir_fds[rel] = fd
        return fd

    def _prune(self, dir_fd: int, prefix: str, wanted: dict[str, SourceFile], wanted_dirs: set[str], report: ReconcileReport) -> None:
        for name in os.listdir(dir_fd):
            rel = f"{prefix}{name}"
            st = os.lstat(name, dir_fd=dir_fd)
            if stat.S_ISDIR(st.st_mode) and rel in wanted_dirs:
                fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
                try:
                    self._prune(fd, rel + "/", wanted, wanted_dirs, report)
                finally:
                    os.close(fd)
            elif stat.S_ISREG(st.st_mode) and rel in wanted:
                continue
            else:
                _remove_entry(dir_fd, name)
                report.removed.append(rel)

    def _write(self, parent_fd: int, name: str, f: SourceFile) -> None:
        try:
            os.unlink(name, dir_fd=parent_fd)  # a fresh inode: never write through a link another process holds
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            _remove_entry(parent_fd, name)
        mode = 0o755 if f.executable else 0o644
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent_fd)
        with os.fdopen(fd, "wb") as out:
            if f.content is not None:
                out.write(f.content)
            else:
                with self._read_blob(f.digest) as src:
                    while chunk := src.read(_CHUNK):
                        out.write(chunk)
            os.fchmod(out.fileno(), mode)
