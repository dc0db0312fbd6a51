"""A package tarball unpacked the way npm unpacks it, into memory.

npm (pacote over node-tar) extracts a registry tarball with these rules,
which decide the bytes and modes of every file in ``node_modules``:

- the first path component (``package/``, whatever its name) is stripped;
  entries left with no path, with a ``..`` component or outside the package
  are dropped, a leading ``/`` is removed;
- only files are written: directory entries are not (a directory exists
  because a file is in it, so a tarball's empty directories never appear),
  symlinks and hardlinks are dropped, as are devices and fifos;
- a ``.gitignore`` becomes ``.npmignore`` unless the tarball already had a
  ``.npmignore`` beside it (pacote keeps npm pack's old renaming);
- a file's mode is ``((mode | 0o666) & ~umask) | 0o600``: executable for its
  owner exactly when the tarball's mode says so (the bins are made
  executable later, when they are linked: ``layout.py``);
- a later entry for the same path replaces an earlier one.

Anything this module cannot take the same way (a file where another entry
needs a directory) raises ``UnusualTarball``, and the tree is installed by
npm instead.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import zlib
from dataclasses import dataclass

MAX_UNPACKED = 1 << 30  # a tarball that unpacks to more than this is not a package we keep


class UnusualTarball(ValueError):
    pass


NPM_UMASK = 0o022  # npm's default umask, in its file mode rule


@dataclass(frozen=True)
class PackageFile:
    path: str
    data: bytes
    tar_mode: int

    @property
    def mode(self) -> int:
        """The mode npm gives the file on disk (the store keeps its owner's exec bit)."""
        return ((self.tar_mode | 0o666) & ~NPM_UMASK & 0o7777) | 0o600

    @property
    def executable(self) -> bool:
        return bool(self.mode & 0o100)


def _member_path(name: str) -> str | None:
    parts = name.split("/")
    if len(parts) < 2:
        return None
    rest = "/".join(parts[1:]).lstrip("/")
    if not rest or ".." in rest.split("/"):
        return None
    normal = posixpath.normpath(rest)
    if normal in (".", "") or normal.startswith("../"):
        return None
    return normal


def unpack(tarball: bytes, what: str) -> list[PackageFile]:
    """The package's files, sorted by path."""
    try:
        raw = zlib.decompress(tarball, zlib.MAX_WBITS | 16) if tarball[:2] == b"\x1f\x8b" else tarball
    except zlib.error as e:
        raise UnusualTarball(f"the tarball of {what} is not gzip: {e}") from e
    files: dict[str, PackageFile] = {}
    saw_npmignore: set[str] = set()
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                if not member.isreg():
                    continue
                base = posixpath.basename(member.name)
                name = member.name
                if base == ".npmignore":
                    saw_npmignore.add(name)
                elif base == ".gitignore":
                    renamed = name[: -len(".gitignore")] + ".npmignore"
                    if renamed in saw_npmignore:
                        continue
                    name = renamed
                path = _member_path(name)
                if path is None:
                    continue
                total += member.size
                if total > MAX_UNPACKED:
                    raise UnusualTarball(f"the tarball of {what} unpacks to more than {MAX_UNPACKED >> 20} MiB")
                handle = tar.extractfile(member)
                data = handle.read() if handle is not None else b""
                files[path] = PackageFile(path, data, member.mode)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise UnusualTarball(f"the tarball of {what} could not be read: {e}") from e
    paths = set(files)
    for path in paths:
        parent = posixpath.dirname(path)
        while parent:
            if parent in paths:
                raise UnusualTarball(f"the tarball of {what} has a file where {path} needs a directory")
            parent = posixpath.dirname(parent)
    return [files[p] for p in sorted(files)]
