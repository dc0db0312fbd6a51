"""A dependency tree's manifest made from stored packages: no file is copied to make it.

Each package's files go under its lockfile path, the bins become the
symlinks npm makes (``layout.py`` decides which), their targets executable
and with a CRLF after ``#!`` made LF (bin-links' ``fixBin``), and
``.package-lock.json`` is npm's hidden lockfile. The result is the manifest
``TreeStore.ingest`` would make of ``npm ci --ignore-scripts``'s
``node_modules``: same paths, digests, exec bits and link targets, so the
same tree digest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from cached.digest import Digest
from cached.packages.layout import Layout
from cached.v1 import tree_pb2

WINDOWS_HASHBANG = re.compile(rb"^#![^\n]+\r\n")
HIDDEN_LOCKFILE = ".package-lock.json"


def fix_bin(data: bytes) -> bytes:
    """bin-links' dos2Unix: only a ``#!`` line ending in CRLF, seen in the first 2048 bytes, is rewritten."""
    if not WINDOWS_HASHBANG.match(data[:2048].decode("utf-8", "replace").encode()):
        return data
    text = data.decode("utf-8", "replace")  # npm reads the whole file as UTF-8 and writes it back
    return re.sub(r"^(#![^\n]+)\r\n", r"\1\n", text, count=1).encode()


def compose(
    layout: Layout, trees: Mapping[str, tree_pb2.Tree], read: Callable[[Digest], bytes], put: Callable[[bytes, bool], Digest],
) -> tree_pb2.Tree:
    """``trees``: package key -> its manifest; ``read``/``put``: blob bytes, for the few bins npm rewrites."""
    files: dict[str, tuple[tree_pb2.Digest, bool]] = {}
    directories: list[str] = []
    for entry in sorted(layout.entries, key=lambda e: e.depth):  # a nested package's files win over its parent's copy
        base = entry.path[len("node_modules/"):]
        tree = trees[entry.key]
        if not tree.files:
            directories.append(base)
        for node in tree.files:
            files[f"{base}/{node.path}"] = (node.digest, node.executable)
    symlinks: list[tuple[str, str]] = []
    files_of = {key: {node.path for node in tree.files} for key, tree in trees.items()}
    for link in layout.bins(files_of):
        symlinks.append((link.path, link.target))
        path = f"{link.entry.path[len('node_modules/'):]}/{link.file}"
        digest, _ = files[path]
        # put: the executable blob of the (fixed) bytes, which the store may not hold yet
        files[path] = (put(fix_bin(read(Digest.from_proto(digest))), True).to_proto(), True)
    if layout.listed:  # npm makes no node_modules (so no hidden lockfile) for an app without packages
        files[HIDDEN_LOCKFILE] = (put(layout.hidden_lockfile(), False).to_proto(), False)
    out = tree_pb2.Tree()
    for path in sorted(files):
        digest, executable = files[path]
        out.files.add(path=path, digest=digest, executable=executable)
    for path, target in sorted(symlinks):
        out.symlinks.add(path=path, target=target)
    out.directories.extend(sorted(directories))
    return out
