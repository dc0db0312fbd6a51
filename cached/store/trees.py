"""Trees: a directory as blobs plus a manifest, and manifests turned back into directories.

``ingest`` walks a directory without following symlinks and stores each file
once; the manifest (``tree_pb2.Tree``, deterministic, sorted by path) is itself
a blob, so a tree's digest is its manifest's digest.

``materialise`` builds ``trees/<function>-<hash>/`` out of hardlinks in a
``trees/.tmp-*`` directory, renames it into place, makes it durable and only
then records it as complete in the ``trees`` database. Opening the store
removes temp and unrecorded directories, so an incomplete tree is never
returned.

This module must never follow a symlink while walking or populating, never
write through a path a manifest names without validating it first (manifests
can come from clients), and never return a tree directory that is not marked.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lmdb

from cached.digest import Digest
from cached.failpoints import failpoint
from cached.store.blobs import BlobStore
from cached.store.errors import BlobNotFound, TreeNotFound
from cached.store.fsutil import remove_tree
from cached.store.index import Index
from cached.store.protect import Protection
from cached.v1 import tree_pb2

log = logging.getLogger("cached.store.trees")

DIR_MODE_READONLY = 0o555
BATCH = 512  # files per hashing task: big enough to amortise the pool, small enough to balance


def tree_dir_name(digest: Digest) -> str:
    """No ':' in it: overlayfs uses ':' to separate lower directories."""
    return f"{digest.function}-{digest.hash}"


def serialise(tree: tree_pb2.Tree) -> bytes:
    return tree.SerializeToString(deterministic=True)


def _check_path(path: str, what: str) -> None:
    wrapped = f"/{path}/"
    if (
        not path
        or path[0] == "/"
        or path[-1] == "/"
        or "//" in path
        or "/./" in wrapped
        or "/../" in wrapped
        or "\x00" in path
        or "\\" in path
        or (len(path) > 255 and any(len(part.encode()) > 255 for part in path.split("/")))
    ):
        raise ValueError(f"unsafe {what} path in tree manifest: {path!r}")


def plan(tree: tree_pb2.Tree) -> list[str]:
    """Validates a manifest and returns the directories to create, parents first.

    Refuses paths that would write outside the destination, through a symlink
    or below a file, and duplicates: manifests can come from clients.
    """
    files = [f.path for f in tree.files]
    links = [s.path for s in tree.symlinks]
    empty = list(tree.directories)
    for path in files:
        _check_path(path, "file")
    for path in links:
        _check_path(path, "symlink")
    for path in empty:
        _check_path(path, "directory")
    leaves = files + links + empty
    unique = set(leaves)
    if len(unique) != len(leaves):
        seen: set[str] = set()
        dup = next(p for p in leaves if p in seen or seen.add(p))  # type: ignore[func-returns-value]
        raise ValueError(f"duplicate path in tree manifest: {dup!r}")
    dirs: set[str] = set(empty)
    for path in leaves:
        cut = path.rfind("/")
        while cut > 0:
            parent = path[:cut]
            if parent in dirs:
                break
            dirs.add(parent)
            cut = parent.rfind("/")
    clash = dirs.intersection(files) or dirs.intersection(links)
    if clash:
        bad = min(clash)
        kind = "symlink" if bad in set(links) else "file"
        raise ValueError(f"tree manifest has paths below {kind} {bad!r}")
    return sorted(dirs, key=lambda p: p.count("/"))


def validate(tree: tree_pb2.Tree) -> None:
    plan(tree)


class TreeStore:
    def __init__(
        self,
        root: Path,
        index: Index,
        blobs: BlobStore,
        protection: Protection,
        *,
        workers: int | None = None,
    ) -> None:
        self.dir = root / "trees"
        self.index = index
        self.blobs = blobs
        self.protection = protection
        self.workers = workers if workers is not None else min(4, os.cpu_count() or 1)
        self._db = index.db("trees")
        self._complete: set[str] = set()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._cache: OrderedDict[Digest, tree_pb2.Tree] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._sizes: dict[Digest, int] = {}

    # -- ingest ---------------------------------------------------------------------
    def ingest(self, directory: Path, *, move: bool = False) -> tuple[Digest, tree_pb2.Tree]:
        """Stores every file under ``directory`` and its manifest; returns ``(manifest digest, Tree)``.

        With ``move=False`` read-only files the store's uid owns on its
        filesystem are hardlinked, others copied (see ``BlobStore.put_file_node``);
        ``move=True`` renames them into the store (the directory is the
        caller's to discard), which never copies on the same filesystem.
        """
        directory = Path(directory)
        st = os.lstat(directory)
        if not stat.S_ISDIR(st.st_mode):
            raise ValueError(f"not a directory: {directory}")
        with self.protection.ingesting():
            files, symlinks, empty_dirs = _walk(str(directory))
            nodes = self._put_files(files, move)
            tree = tree_pb2.Tree()
            for rel, digest, executable in sorted(nodes, key=lambda n: n[0]):
                tree.files.add(path=rel, digest=digest.to_proto(), executable=executable)
            for rel, target in sorted(symlinks):
                tree.symlinks.add(path=rel, target=target)
            tree.directories.extend(sorted(empty_dirs))
            failpoint("ingest.before_manifest")
            digest = self.blobs.put_bytes(serialise(tree))
        self._remember(digest, tree)
        log.debug("ingested %s: %d files, %d symlinks -> %s", directory, len(files), len(symlinks), digest)
        return digest, tree

    def _put_files(self, files: list[tuple[str, str]], move: bool) -> list[tuple[str, Digest, bool]]:
        put = self.blobs.put_file_node

        def run(chunk: list[tuple[str, str]]) -> list[tuple[str, Digest, bool]]:
            out = []
            for rel, path in chunk:
                digest, executable = put(path, move=move)
                failpoint("ingest.after_blob")
                out.append((rel, digest, executable))
            return out

        if self.workers <= 1 or len(files) < 2 * BATCH:
            return run(files)
        chunks = [files[i : i + BATCH] for i in range(0, len(files), BATCH)]
        with ThreadPoolExecutor(self.workers, thread_name_prefix="cached-ingest") as pool:
            return [node for part in pool.map(run, chunks) for node in part]

    def put_tree(self, tree: tree_pb2.Tree, *, blobs_known: bool = False) -> Digest:
        """Stores a manifest built elsewhere (its files must already be blobs).

        ``blobs_known``: the caller made it from trees this store holds (and
        leases), so the check that every blob is present is skipped: it is
        one lookup per file, most of a large composed tree's cost."""
        validate(tree)
        missing = [] if blobs_known else self.blobs.missing(Digest.from_proto(f.digest) for f in tree.files)
        if missing:
            raise BlobNotFound(f"tree names {len(missing)} blob(s) not in the store, e.g. {missing[0]}")
        digest = self.blobs.put_bytes(serialise(tree))
        self._remember(digest, tree)
        return digest

    # -- manifests ------------------------------------------------------------------
    def _remember(self, digest: Digest, tree: tree_pb2.Tree) -> None:
        with self._cache_lock:
            self._cache[digest] = tree
            self._cache.move_to_end(digest)
            while len(self._cache) > 8:
                self._cache.popitem(last=False)

    def load(self, tree_digest: Digest) -> tree_pb2.Tree:
        with self._cache_lock:
            cached = self._cache.get(tree_digest)
        if cached is not None:
            return cached
        try:
            data = self.blobs.read_bytes(tree_digest)
        except (BlobNotFound, ValueError):
            raise TreeNotFound(f"tree {tree_digest} is not in the store") from None
        tree = tree_pb2.Tree()
        try:
            tree.ParseFromString(data)
        except Exception:  # noqa: BLE001 - protobuf raises DecodeError and others
            raise TreeNotFound(f"blob {tree_digest} is not a tree manifest") from None
        self._remember(tree_digest, tree)
        return tree

    def file_digests(self, tree_digest: Digest) -> set[Digest]:
        return {Digest.from_proto(f.digest) for f in self.load(tree_digest).files}

    def size(self, tree_digest: Digest) -> int:
        """Bytes the tree accounts for: its manifest plus each distinct file once."""
        known = self._sizes.get(tree_digest)
        if known is None:
            known = tree_digest.size + sum(d.size for d in self.file_digests(tree_digest))
            if len(self._sizes) > 10000:
                self._sizes.clear()
            self._sizes[tree_digest] = known
        return known

    # -- materialise ----------------------------------------------------------------------
    def path_of(self, tree_digest: Digest) -> Path:
        return self.dir / tree_dir_name(tree_digest)

    def is_materialised(self, tree_digest: Digest) -> bool:
        name = tree_dir_name(tree_digest)
        if name in self._complete:
            if os.path.isdir(self.dir / name):  # one stat: a tree deleted by hand gets rebuilt
                return True
            self._complete.discard(name)
            return False
        if self.index.get("trees", name.encode()) is not None and os.path.isdir(self.dir / name):
            self._complete.add(name)
            return True
        return False

    def _lock_for(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(name, threading.Lock())

    def materialise(self, tree_digest: Digest) -> Path:
        """A read-only directory of the tree (hardlinks to blobs); O(1) when already there."""
        final = self.path_of(tree_digest)
        if self.is_materialised(tree_digest):
            return final
        name = final.name
        with self._lock_for(name):
            if self.is_materialised(tree_digest):
                return final
            tree = self.load(tree_digest)
            dirs = plan(tree)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.dir))
            try:
                self._populate(tree, tmp, dirs, link=True)
                failpoint("tree.after_populate")
                for rel in reversed(dirs):
                    os.chmod(tmp / rel, DIR_MODE_READONLY)
                os.chmod(tmp, DIR_MODE_READONLY)
                if os.path.lexists(final):  # an unmarked leftover from a failed attempt
                    remove_tree(final)
                os.rename(tmp, final)
            except BaseException:
                remove_tree(tmp)
                raise
            failpoint("tree.before_mark")
            key = tree_digest.key
            db = self._db
            self.index.submit(lambda txn: txn.put(name.encode(), key, db=db), sync=True).result()
            self._complete.add(name)
        log.info("materialised tree %s at %s (%d files)", tree_digest, final, len(tree.files))
        return final

    def forget_materialised(self, names: set[str]) -> None:
        self._complete.difference_update(names)

    def link_out(self, tree: tree_pb2.Tree, dest: Path) -> None:
        """Hardlinks the tree's files into ``dest`` (directories writable, files read-only blobs)."""
        dirs = plan(tree)
        Path(dest).mkdir(parents=True, exist_ok=True)
        self._populate(tree, Path(dest), dirs, link=True)

    def copy_out(self, tree: tree_pb2.Tree, dest: Path) -> None:
        """Writes private, writable copies (0644 / 0755) of the tree's files into ``dest``."""
        dirs = plan(tree)
        Path(dest).mkdir(parents=True, exist_ok=True)
        self._populate(tree, Path(dest), dirs, link=False)

    def _copy_blob(self, digest: Digest, executable: bool, dest: str) -> None:
        with self.blobs.open(digest, executable) as src:
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                remaining = digest.size
                while remaining > 0:
                    try:
                        n = os.copy_file_range(src.fileno(), fd, remaining)
                    except OSError as e:  # another filesystem (a capped workspace's tmpfs): read and write
                        if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                            raise
                        n = _write_all(fd, os.read(src.fileno(), min(remaining, 1 << 20)))
                    if n == 0:
                        raise ValueError(f"blob {digest} is shorter on disk than its size")
                    remaining -= n
                os.fchmod(fd, 0o755 if executable else 0o644)
            finally:
                os.close(fd)

    def _populate(self, tree: tree_pb2.Tree, dest: Path, dirs: list[str], *, link: bool) -> None:
        base = os.fspath(dest)
        for rel in dirs:
            try:
                os.mkdir(f"{base}/{rel}", 0o755)
            except FileExistsError:
                if not stat.S_ISDIR(os.lstat(f"{base}/{rel}").st_mode):
                    raise
        nodes = list(tree.files)
        if link and not self.blobs.counts_links:
            self._link_fast(nodes, base)
        else:
            place = self.blobs.link_to if link else self._copy_blob
            from_proto = Digest.from_proto
            for node in nodes:
                place(from_proto(node.digest), node.executable, f"{base}/{node.path}")
        for symlink in tree.symlinks:
            os.symlink(symlink.target, f"{base}/{symlink.path}")

    def _link_fast(self, nodes: list[tree_pb2.FileNode], base: str) -> None:
        """Hardlinks straight to each blob's primary file; anything unusual goes the careful way."""
        cas = os.fspath(self.blobs.cas)
        function = self.blobs.function
        link = os.link
        slow: list[tree_pb2.FileNode] = []

        def run(chunk: list[tree_pb2.FileNode]) -> list[tree_pb2.FileNode]:
            failed = []
            for node in chunk:
                d = node.digest
                h = d.hash
                try:
                    link(f"{cas}/{h[:2]}/{h}.x" if node.executable else f"{cas}/{h[:2]}/{h}", f"{base}/{node.path}")
                except OSError:  # EMLINK, a missing mode, a foreign digest: the careful path decides
                    failed.append(node)
            return failed

        if self.workers <= 1 or len(nodes) < 2 * BATCH:
            slow = run(nodes)
        else:
            chunks = [nodes[i : i + BATCH] for i in range(0, len(nodes), BATCH)]
            with ThreadPoolExecutor(self.workers, thread_name_prefix="cached-link") as pool:
                slow = [node for part in pool.map(run, chunks) for node in part]
        for node in slow:
            digest = Digest.from_proto(node.digest)
            if digest.function != function:
                raise ValueError(f"tree names {digest}; this store holds {function} blobs")
            self.blobs.link_to(digest, node.executable, f"{base}/{node.path}")

    # -- recovery and removal ----------------------------------------------------------
    def recover(self) -> tuple[int, int]:
        """At open: removes temp and unmarked tree directories, and marks whose directory is gone."""
        marked = {bytes(k).decode() for k, _ in self.index.items("trees")}
        removed = 0
        for entry in os.scandir(self.dir):
            if entry.name.startswith(".tmp-") or entry.name not in marked:
                log.info("removing incomplete tree directory %s", entry.path)
                remove_tree(Path(entry.path))
                removed += 1
        present = {e.name for e in os.scandir(self.dir)}
        stale = [name for name in marked if name not in present]
        if stale:
            db = self._db

            def fn(txn: lmdb.Transaction) -> None:
                for name in stale:
                    txn.delete(name.encode(), db=db)

            self.index.submit(fn).result()
        return removed, len(stale)

    def materialised(self) -> dict[str, Digest]:
        """Directory name -> tree digest of every complete materialised tree."""
        return {bytes(k).decode(): Digest.from_key(bytes(v)) for k, v in self.index.items("trees")}

    def unmark_and_remove(self, txn: lmdb.Transaction, names: list[str]) -> None:
        """Inside a writer txn: drops the marks; the directories go right after (see ``remove_dirs``)."""
        for name in names:
            txn.delete(name.encode(), db=self._db)

    def remove_dirs(self, names: list[str]) -> None:
        self._complete.difference_update(names)
        for name in names:
            remove_tree(self.dir / name)


def _walk(top: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """(files, symlinks, empty dirs) below ``top``, as (relative path, absolute path or target)."""
    files: list[tuple[str, str]] = []
    symlinks: list[tuple[str, str]] = []
    empty: list[str] = []
    stack: list[tuple[str, str]] = [("", top)]
    while stack:
        rel, path = stack.pop()
        with os.scandir(path) as it:
            entries = list(it)
        if not entries and rel:
            empty.append(rel)
        for entry in entries:
            name = entry.name
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"file name is not valid UTF-8: {entry.path!r}") from None
            child = f"{rel}/{name}" if rel else name
            if entry.is_symlink():
                target = os.readlink(entry.path)
                try:
                    target.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError(f"symlink target is not valid UTF-8: {entry.path!r}") from None
                symlinks.append((child, target))
            elif entry.is_dir(follow_symlinks=False):
                stack.append((child, entry.path))
            elif entry.is_file(follow_symlinks=False):
                files.append((child, entry.path))
            else:
                raise ValueError(f"cannot store special file (device, socket or fifo): {entry.path}")
    return files, symlinks, empty


def _write_all(fd: int, data: bytes) -> int:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    return len(data)
