"""Writing a result's outputs to a local directory, trusting none of the paths the server sent.

A path must be relative, in forward slashes, without empty, ``.`` or ``..``
components, backslashes or NUL. Files are created through directory file
descriptors opened with ``O_NOFOLLOW``, so a symlink planted in the
destination (``out/assets -> /etc``) is refused, never followed: nothing is
ever written outside ``out_dir``. Every path is checked before the first
byte is written.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from cached_client.types import OutputFile

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_TMP_SUFFIX = ".cached-tmp"


class UnsafeOutputPath(ValueError):
    """An output path that could write outside the destination directory; nothing of the result was written."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"refusing output path {path!r} from the server: {why}")
        self.path = path


def check_output_path(path: object) -> list[str]:
    """The path's components, or UnsafeOutputPath saying why it could escape the destination."""
    if not isinstance(path, str) or not path:
        raise UnsafeOutputPath(str(path), "empty path")
    if "\x00" in path:
        raise UnsafeOutputPath(path, "it contains NUL")
    if "\\" in path:
        raise UnsafeOutputPath(path, "it contains a backslash")
    if path.startswith("/"):
        raise UnsafeOutputPath(path, "it is absolute")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise UnsafeOutputPath(path, "it has an empty, '.' or '..' component")
    if parts[-1].endswith(_TMP_SUFFIX):
        raise UnsafeOutputPath(path, f"names ending in {_TMP_SUFFIX} are this client's temporary files")
    return parts


def _open_child_dir(parent_fd: int, name: str, path: str, shown: str) -> int:
    try:
        os.mkdir(name, 0o755, dir_fd=parent_fd)
    except FileExistsError:
        pass
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            st = os.lstat(name, dir_fd=parent_fd)
            what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
            raise UnsafeOutputPath(path, f"{shown} in the destination is {what}") from None
        raise


def write_output_files(out_dir: str | os.PathLike[str], outputs: Sequence[OutputFile], read: Callable[[OutputFile], bytes]) -> Path:
    """Writes each output below ``out_dir`` (created; existing files replaced), or raises UnsafeOutputPath first."""
    checked = [(o, check_output_path(o.path)) for o in outputs]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for o, parts in checked:
        data = read(o)
        fds = [os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]  # out_dir itself is the caller's choice
        try:
            for i, part in enumerate(parts[:-1]):
                fds.append(_open_child_dir(fds[-1], part, o.path, "/".join(parts[: i + 1])))
            _write_file(fds[-1], parts[-1], data, o)
        finally:
            for fd in fds:
                os.close(fd)
    return out


def _write_file(dir_fd: int, name: str, data: bytes, o: OutputFile) -> None:
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        what = "a symlink" if stat.S_ISLNK(st.st_mode) else "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise UnsafeOutputPath(o.path, f"it is {what} in the destination")
    tmp = name + _TMP_SUFFIX
    try:
        os.unlink(tmp, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, 0o755 if o.executable else 0o644)
    finally:
        os.close(fd)
    os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
