"""Content-addressed blobs: ``cas/<2 hex>/<hash>`` (0444) and ``<hash>.x`` (0555).

A blob's file is written in ``tmp/`` and renamed into place, so a reader sees a
whole blob or none. A read-only file the store's uid owns on the store's
filesystem is taken by hardlink (its inode becomes the blob), and a file handed
over with ``move=True`` by rename (owner and mode fixed first); anything else
(another owner, a write bit, another filesystem, other links to the inode) is
copied, because a hardlink would leave the blob's inode in someone else's hands. When a blob's inode reaches the link limit, a sibling copy
(``<name>.1``, ``<name>.2``...) takes the next links.

Durability is batched: new blobs are pending until the index's next commit,
which runs one ``syncfs`` and registers them in the ``blobs`` database first.

This module must never fsync per file, never write a blob in place, never make
a blob writable, and never hardlink a file it does not own.
"""

from __future__ import annotations

import concurrent.futures
import errno
import itertools
import logging
import os
import stat
import struct
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import lmdb

from cached.digest import CHUNK, Digest, Hasher
from cached.failpoints import failpoint
from cached.store.errors import BlobNotFound
from cached.store.fsutil import link_max
from cached.store.index import Index
from cached.store.protect import Protection
from cached.store.totals import Totals

log = logging.getLogger("cached.store.blobs")

_RECORD = struct.Struct(">QQ")  # size, created (ns since the epoch)
MODE_PLAIN = 0o444
MODE_EXEC = 0o555
SMALL = 1 << 20  # files up to this size are read in one call


def pack_record(size: int, created_ns: int) -> bytes:
    return _RECORD.pack(size, created_ns)


def unpack_record(value: bytes) -> tuple[int, int]:
    size, created = _RECORD.unpack(value)
    return size, created


class BlobStore:
    def __init__(
        self,
        root: Path,
        index: Index,
        hasher: Hasher,
        protection: Protection,
        *,
        link_limit: int | None = None,
    ) -> None:
        self.root = root
        self.cas = root / "cas"
        self.tmp = root / "tmp"
        self._cas = str(self.cas)
        self._tmp = str(self.tmp)
        self.index = index
        self.hasher = hasher
        self.function = hasher.function
        self.protection = protection
        self.uid = os.getuid()
        self.gid = os.getgid()
        self.dev = os.stat(self.cas).st_dev
        fs_limit = link_max(self.cas)
        self.link_limit = min(link_limit, fs_limit) if link_limit else fs_limit
        if self.link_limit < 2:
            raise ValueError(f"link_limit must be at least 2 (the blob itself and one link), not {link_limit}")
        # With an injected limit below the filesystem's, links are counted before linking;
        # otherwise the kernel's EMLINK says when an inode is full.
        self.counts_links = self.link_limit < fs_limit
        self._tmp_prefix = f"{os.getpid()}-{uuid.uuid4().hex[:8]}-"
        self._tmp_counter = itertools.count()
        self._pending: dict[bytes, tuple[int, int]] = {}
        self._pending_lock = threading.Lock()
        self._room: dict[tuple[bytes, bool], int] = {}
        self._owners_db = index.db("owners")
        self.totals = Totals(index)  # blob records and their running count change together
        index.add_pre_commit(self)

    # -- paths ------------------------------------------------------------------------
    def _check(self, digest: Digest) -> None:
        if digest.function != self.function:
            raise ValueError(f"digest {digest} uses {digest.function}; this store holds {self.function} blobs")

    def _name(self, digest: Digest, executable: bool, sibling: int = 0) -> str:
        h = digest.hash
        name = f"{self._cas}/{h[:2]}/{h}.x" if executable else f"{self._cas}/{h[:2]}/{h}"
        return f"{name}.{sibling}" if sibling else name

    def primary(self, digest: Digest, executable: bool = False) -> Path:
        """The blob's canonical path (what ``open`` and ``verify`` read)."""
        self._check(digest)
        return Path(self._name(digest, executable))

    def has(self, digest: Digest, executable: bool = False) -> bool:
        if digest.function != self.function:
            return False
        try:
            st = os.stat(self._name(digest, executable))
        except FileNotFoundError:
            return False
        return st.st_size == digest.size

    def has_content(self, digest: Digest) -> bool:
        """Either mode holds the bytes (what an uploader cares about)."""
        return self.has(digest, False) or self.has(digest, True)

    def missing(self, digests: Iterable[Digest]) -> list[Digest]:
        """The digests whose content is in neither mode; order kept, duplicates once."""
        seen: set[Digest] = set()
        out: list[Digest] = []
        for d in digests:
            if d in seen:
                continue
            seen.add(d)
            if not self.has_content(d):
                out.append(d)
        return out

    # -- writing ----------------------------------------------------------------------
    def _revive(self, digest: Digest, executable: bool) -> bool:
        """Marks ``digest`` as just put and says whether its file is already there.

        The touch happens under the sweep's lock, and the existence check after
        it, so a concurrent sweep either sees the touch or has already deleted
        the file (and then we write it again).
        """
        with self.protection.lock:
            self.protection.touch(digest.key)
        return self.has(digest, executable)

    def _tmp_name(self) -> str:
        # Unique without uuid's cost: one process per root (the lock), and tmp/ is cleared at open.
        return f"{self._tmp}/{self._tmp_prefix}{next(self._tmp_counter)}"

    def _install(self, tmp_name: str, digest: Digest, executable: bool) -> None:
        failpoint("blob.before_rename")
        try:
            os.rename(tmp_name, self._name(digest, executable))
        except BaseException:
            _unlink_quietly(tmp_name)
            raise
        failpoint("blob.after_rename")
        self._note_new(digest)

    def _note_new(self, digest: Digest) -> None:
        with self._pending_lock:
            self._pending[digest.key] = (digest.size, time.time_ns())

    def _write_new(self, digest: Digest, data: bytes | memoryview, executable: bool) -> None:
        tmp_name = self._tmp_name()
        fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fchmod(fd, MODE_EXEC if executable else MODE_PLAIN)
        except BaseException:
            os.close(fd)
            _unlink_quietly(tmp_name)
            raise
        os.close(fd)
        self._install(tmp_name, digest, executable)

    def put_bytes(self, data: bytes, executable: bool = False) -> Digest:
        digest = self.hasher.bytes(data)
        if not self._revive(digest, executable):
            self._write_new(digest, data, executable)
        return digest

    def put_verified(self, digest: Digest, data: bytes, executable: bool = False) -> Digest:
        """Stores uploaded bytes under the digest the client claimed, after re-hashing them."""
        actual = self.hasher.bytes(data)
        if actual != digest:
            raise ValueError(f"content does not match its digest: claimed {digest}, got {actual}")
        return self.put_bytes(data, executable)

    def put_file(self, path: Path | str, executable: bool | None = None, *, move: bool = False) -> Digest:
        return self.put_file_node(path, executable, move=move)[0]

    def put_file_node(
        self, path: Path | str, executable: bool | None = None, *, move: bool = False
    ) -> tuple[Digest, bool]:
        """Stores a regular file, by hardlink or rename when safe, else by copy.

        ``move=True`` hands the file over: it is renamed into the store (same
        filesystem, no other hardlink), its owner set to the store's uid and
        its mode to the blob's; otherwise it is copied and unlinked. The source
        path is gone afterwards (or left as is when the blob already existed). ``move=False`` leaves the path in place and hardlinks
        it only when that cannot let anyone change the blob later: same
        filesystem, owned by the store's uid, no write bit (the caller's promise
        not to write it in place: root ignores permission bits, so a writable
        file could be rewritten through its other name), no other link, and
        the mode's exec bit matching. Anything else is copied.
        """
        path = os.fspath(path)
        # O_NONBLOCK: opening a FIFO must not hang; it is refused just below.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ValueError(f"not a regular file: {path}")
            digest = self._hash_fd(fd, st.st_size)
            exec_bit = bool(st.st_mode & stat.S_IXUSR) if executable is None else executable
            same_fs = st.st_dev == self.dev
            if (
                same_fs
                and st.st_uid == self.uid
                and st.st_nlink == 1
                and not st.st_mode & 0o222
                and bool(st.st_mode & stat.S_IXUSR) == exec_bit
            ):
                # The link itself says whether the blob was there (EEXIST): no stat first.
                with self.protection.lock:
                    self.protection.touch(digest.key)
                self._take_by_link(fd, st, path, digest, exec_bit)
                return digest, exec_bit
            if self._revive(digest, exec_bit):
                return digest, exec_bit
            # Renamed or linked, the inode becomes the blob: only when no other name
            # can reach it (a second link planted by a build could rewrite it later).
            if (
                move
                and same_fs
                and st.st_nlink == 1
                and (self.uid == 0 or (st.st_uid, st.st_gid) == (self.uid, self.gid))
            ):
                self._take_by_rename(fd, st, path, digest, exec_bit)
            else:
                self._copy_fd(fd, digest, exec_bit, path)
                if move:
                    _unlink_quietly(path)
            return digest, exec_bit
        finally:
            os.close(fd)

    def _hash_fd(self, fd: int, size_hint: int) -> Digest:
        h = self.hasher.new()
        if size_hint <= SMALL:
            data = os.pread(fd, size_hint + 1, 0)
            if len(data) <= size_hint:
                h.update(data)
                return Digest(h.hexdigest(), len(data), self.function)
        size = 0
        offset = 0
        while chunk := os.pread(fd, CHUNK, offset):
            h.update(chunk)
            size += len(chunk)
            offset += len(chunk)
        return Digest(h.hexdigest(), size, self.function)

    def _unchanged(self, fd: int, before: os.stat_result, path: str) -> None:
        after = os.fstat(fd)
        if after.st_size != before.st_size or after.st_mtime_ns != before.st_mtime_ns:
            raise ValueError(f"file changed while it was being stored: {path}")

    def _take_by_rename(self, fd: int, st: os.stat_result, path: str, digest: Digest, executable: bool) -> None:
        if st.st_uid != self.uid or st.st_gid != self.gid:
            os.fchown(fd, self.uid, self.gid)
        os.fchmod(fd, MODE_EXEC if executable else MODE_PLAIN)
        self._unchanged(fd, st, path)
        failpoint("blob.before_rename")
        os.rename(path, self._name(digest, executable))
        failpoint("blob.after_rename")
        self._note_new(digest)

    def _take_by_link(self, fd: int, st: os.stat_result, path: str, digest: Digest, executable: bool) -> None:
        """Links ``path`` straight to the blob's name (atomic, no temp needed: a link never exposes a partial file)."""
        mode = MODE_EXEC if executable else MODE_PLAIN
        if stat.S_IMODE(st.st_mode) != mode:
            os.fchmod(fd, mode)
        self._unchanged(fd, st, path)
        final = self._name(digest, executable)
        failpoint("blob.before_rename")
        try:
            os.link(path, final)
        except FileExistsError:
            if self.has(digest, executable):
                return  # already stored (or stored by a concurrent put just now)
            self._copy_fd(fd, digest, executable, path)  # a wrong-sized file sits there: replace it
            return
        linked = os.lstat(final)
        if linked.st_ino != st.st_ino or linked.st_dev != st.st_dev:
            # The path named another file than the one we hashed: take back our link, copy what we hashed.
            _unlink_quietly(final)
            self._copy_fd(fd, digest, executable, path)
            return
        failpoint("blob.after_rename")
        self._note_new(digest)

    def _copy_fd(self, fd: int, digest: Digest, executable: bool, path: str) -> None:
        """Copies what ``fd`` holds, hashing again on the way so the copy is the content we named."""
        tmp_name = self._tmp_name()
        out = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            h = self.hasher.new()
            offset = 0
            while chunk := os.pread(fd, CHUNK, offset):
                h.update(chunk)
                view = memoryview(chunk)
                while view:
                    n = os.write(out, view)
                    view = view[n:]
                offset += len(chunk)
            if h.hexdigest() != digest.hash or offset != digest.size:
                raise ValueError(f"file changed while it was being stored: {path}")
            os.fchmod(out, MODE_EXEC if executable else MODE_PLAIN)
        except BaseException:
            os.close(out)
            _unlink_quietly(tmp_name)
            raise
        os.close(out)
        self._install(tmp_name, digest, executable)

    # -- reading ----------------------------------------------------------------------
    def open(self, digest: Digest, executable: bool = False) -> BinaryIO:
        """Opens the blob for reading; the other mode's file serves when this one is absent."""
        self._check(digest)
        for exe in (executable, not executable):
            try:
                return open(self._name(digest, exe), "rb")  # noqa: SIM115 - the caller closes it
            except FileNotFoundError:
                continue
        raise BlobNotFound(f"blob {digest} is not in the store")

    def read_bytes(self, digest: Digest) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def ensure(self, digest: Digest, executable: bool) -> None:
        """Makes the requested mode's file exist, copying the other mode's when needed."""
        self._check(digest)
        if self.has(digest, executable):
            return
        if not self.has(digest, not executable):
            raise BlobNotFound(f"blob {digest} is not in the store")
        with self.protection.lock:
            self.protection.touch(digest.key)
        self._copy_sibling(self._name(digest, not executable), digest, executable, 0)

    def _copy_sibling(self, source: str, digest: Digest, executable: bool, sibling: int) -> None:
        tmp_name = self._tmp_name()
        fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        try:
            out = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                remaining = digest.size
                while remaining > 0:
                    n = os.copy_file_range(fd, out, remaining)
                    if n == 0:
                        raise ValueError(f"blob {digest} is shorter on disk than its size")
                    remaining -= n
                os.fchmod(out, MODE_EXEC if executable else MODE_PLAIN)
            finally:
                os.close(out)
        except BaseException:
            _unlink_quietly(tmp_name)
            raise
        finally:
            os.close(fd)
        target = self._name(digest, executable, sibling)
        os.rename(tmp_name, target)
        if sibling == 0:
            self._note_new(digest)
        log.debug("blob copy %s for %s", target, digest)

    def link_to(self, digest: Digest, executable: bool, dest: str | os.PathLike[str]) -> None:
        """Hardlinks the blob at ``dest``, moving to (or making) a sibling copy when an inode is full."""
        key = (digest.key, executable)
        n = self._room.get(key, 0)
        while True:
            src = self._name(digest, executable, n)
            if self.counts_links:
                try:
                    if os.stat(src).st_nlink >= self.link_limit:
                        n += 1
                        continue
                except FileNotFoundError:
                    self._make_copy(digest, executable, n)
                    continue
            try:
                os.link(src, dest)
            except FileNotFoundError:
                if os.path.exists(src):
                    raise  # the destination's directory is missing
                self._make_copy(digest, executable, n)
                continue
            except OSError as e:
                if e.errno != errno.EMLINK:
                    raise
                n += 1
                continue
            if n:
                self._room[key] = n
            return

    def _make_copy(self, digest: Digest, executable: bool, sibling: int) -> None:
        if sibling == 0:
            self.ensure(digest, executable)
            return
        self._copy_sibling(self._name(digest, executable), digest, executable, sibling)

    def path_for(self, digest: Digest, executable: bool = False) -> Path:
        """A path of this blob whose inode has room for one more link (for hardlinking out).

        Another thread may take that room first; ``link_to`` handles the race.
        """
        self.ensure(digest, executable)
        key = (digest.key, executable)
        n = self._room.get(key, 0)
        while True:
            src = self._name(digest, executable, n)
            try:
                if os.stat(src).st_nlink < self.link_limit:
                    if n:
                        self._room[key] = n
                    return Path(src)
            except FileNotFoundError:
                self._make_copy(digest, executable, n)
                continue
            n += 1

    def files_of(self, digest: Digest) -> list[Path]:
        """Every file holding this blob: both modes and all sibling copies."""
        self._check(digest)
        prefix = digest.hash
        directory = Path(self._cas) / prefix[:2]
        out: list[Path] = []
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return out
        for name in names:
            if name == prefix or name.startswith(prefix + "."):
                out.append(directory / name)
        return out

    def verify(self, digest: Digest, executable: bool = False) -> bool:
        """Re-hashes the blob (and its sibling copies of that mode); False when any differs or it is absent."""
        self._check(digest)
        paths = [p for p in self.files_of(digest) if parse_name(p.name)[1] == executable]
        if not paths:
            return False
        return all(self.hasher.file(p) == digest for p in paths)

    # -- ownership (tenant-scoped answers) ---------------------------------------------
    def note_owner(self, tenant: str, digests: Iterable[Digest]) -> concurrent.futures.Future[None]:
        """Records that ``tenant`` uploaded or produced these blobs; returns a Future."""
        suffix = b"\x00" + tenant.encode()
        keys = [d.key + suffix for d in digests]
        db = self._owners_db

        def fn(txn: lmdb.Transaction) -> None:
            for k in keys:
                txn.put(k, b"", db=db, overwrite=False)

        return self.index.submit(fn)

    def owned_by(self, tenant: str, digests: Iterable[Digest]) -> set[Digest]:
        """The subset of ``digests`` that ``tenant`` may see (read only, no write)."""
        digests = list(digests)
        with self.index.read() as txn:
            return self.owned_in(txn, tenant, digests)

    def owned_in(self, txn: lmdb.Transaction, tenant: str, digests: Iterable[Digest]) -> set[Digest]:
        """``owned_by`` inside the caller's read transaction."""
        suffix = b"\x00" + tenant.encode()
        return {d for d in digests if txn.get(d.key + suffix, db=self._owners_db) is not None}

    def missing_for(self, tenant: str, digests: Iterable[Digest]) -> list[Digest]:
        """FindMissingBlobs scoped to a tenant: what it has not stored is missing, whoever else has."""
        digests = list(dict.fromkeys(digests))
        owned = self.owned_by(tenant, digests)
        return [d for d in digests if d not in owned or not self.has_content(d)]

    # -- the index's pre-commit hook ----------------------------------------------------
    def take(self) -> dict[bytes, tuple[int, int]]:
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        return pending

    def apply(self, txn: lmdb.Transaction, work: dict[bytes, tuple[int, int]]) -> None:
        for key, (size, created) in work.items():
            self.totals.register(txn, key, _RECORD.pack(size, created))

    def restore(self, work: dict[bytes, tuple[int, int]]) -> None:
        with self._pending_lock:
            for key, value in work.items():
                self._pending.setdefault(key, value)

    def pending_count(self) -> int:
        return len(self._pending)


def parse_name(name: str) -> tuple[str, bool, int]:
    """``<hash>[.x][.N]`` -> (hash, executable, sibling)."""
    parts = name.split(".")
    h = parts[0]
    executable = len(parts) > 1 and parts[1] == "x"
    rest = parts[2:] if executable else parts[1:]
    sibling = int(rest[0]) if rest and rest[0].isdigit() else 0
    return h, executable, sibling


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
