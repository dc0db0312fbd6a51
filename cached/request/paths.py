"""The path rules of a request's sources tree (DESIGN.md, Contracts: Sources tree).

Paths are taken exactly as sent: no line-ending, case or Unicode normalisation
of contents. A path is refused rather than repaired, so what is built is what
the caller stored.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from cached.errors import InvalidRequest

MAX_COMPONENT_BYTES = 255
FORBIDDEN_PREFIXES = ("node_modules", ".git")


def check_path(path: str, *, output_dir: str = "dist") -> None:
    """Raises InvalidRequest naming the path when it breaks a rule."""
    field = f"files[{path!r}]"
    if not path:
        raise InvalidRequest(field, "empty path")
    if "\x00" in path:
        raise InvalidRequest(field, "path contains NUL")
    if "\\" in path:
        raise InvalidRequest(field, "path contains a backslash; use forward slashes")
    if path.startswith("/"):
        raise InvalidRequest(field, "absolute path; paths are relative to the app's root")
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(field, "path is not valid UTF-8") from None
    del encoded
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise InvalidRequest(field, "path has an empty, '.' or '..' component")
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            raise InvalidRequest(field, f"a path component is longer than {MAX_COMPONENT_BYTES} bytes")
    if parts[0] in FORBIDDEN_PREFIXES or parts[0] == output_dir:
        raise InvalidRequest(field, f"paths under {parts[0]}/ are not sources (node_modules/, .git/ and the output dir are the daemon's)")


def check_tree(paths: Iterable[str], *, output_dir: str = "dist") -> None:
    """Checks every path, then duplicates (NFC/NFD included) and file/directory conflicts."""
    seen: dict[str, str] = {}
    files: set[str] = set()
    for path in paths:
        check_path(path, output_dir=output_dir)
        normal = unicodedata.normalize("NFC", path)
        if normal in seen:
            other = seen[normal]
            what = "twice" if other == path else f"twice under different Unicode forms ({other!r})"
            raise InvalidRequest(f"files[{path!r}]", f"path appears {what}")
        seen[normal] = path
        files.add(normal)
    for normal in files:
        parent = normal
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            if parent in files:
                raise InvalidRequest(f"files[{seen[parent]!r}]", f"is a file but {seen[normal]!r} needs it to be a directory")
