"""Where each app's workspace lives, and the cap on what a build may write.

An app's directory is ``work/<tenant>/<app>/``; its workspace is the ``ws``
directory inside it (sourcemaps are relative: the same bytes wherever it is).
With a cap (``cached serve --build-write-size``, a root daemon with the
sandbox and overlays) that directory is a tmpfs of its own, ``size=``-capped,
mounted by the daemon in its own mount namespace when the app is first built,
and the overlay's upper and work dirs of the app's builds (cold or warm) are
made on it too, beside ``ws``: whatever a build writes, into its workspace
(``dist/``, anything) or through ``node_modules``, counts against the one cap,
and a build past it gets ``ENOSPC`` (the runner then names the limit; see
``RunLimits.write_bytes``). The sandbox clones ``ws`` into its own namespace.
Tmpfs pages are charged to the writer's memory cgroup too.

Workspaces then live in RAM, so at most ``kept`` stay mounted: the least
recently used beyond that are unmounted (and their content dropped) by
``trim``, never one whose app is building or has a live warm builder (the
caller says which are busy); the next build of a dropped app rewrites it in
full. A starting daemon lazily detaches whatever an earlier one left mounted
under ``work/`` (a crash leaves them) and removes what was there; a stopping
one unmounts its own.

Without a cap every app's directory is a plain one on the store's disk and
its overlay dirs are made in ``scratch/``, as before.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("cached.execution.workspaces")

MS_NOSUID = 0x2
MS_NODEV = 0x4
MNT_DETACH = 0x2
WORKSPACE = "ws"
_libc = ctypes.CDLL(None, use_errno=True)


def _mount_tmpfs(path: Path, size: int) -> None:
    data = f"size={size},mode=0755".encode()
    if _libc.mount(b"tmpfs", os.fsencode(path), b"tmpfs", ctypes.c_ulong(MS_NOSUID | MS_NODEV), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount tmpfs at {path}: {os.strerror(err)}")


def _detach(path: Path | str) -> None:
    if _libc.umount2(os.fsencode(path), ctypes.c_int(MNT_DETACH)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {path}: {os.strerror(err)}")


def _unescape(field: str) -> str:
    """A mountinfo path: spaces, tabs, newlines and backslashes are octal escapes."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_under(top: Path) -> list[str]:
    """Mount points of this mount namespace below ``top`` (deepest first)."""
    prefix = os.path.realpath(top).rstrip("/") + "/"
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                point = _unescape(line.split(" ")[4])
                if point.startswith(prefix):
                    found.append(point)
    except OSError:
        return []
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def detach_all(top: Path) -> int:
    """Lazily unmounts every mount below ``top``; returns how many."""
    count = 0
    for point in mounts_under(top):
        try:
            _detach(point)
            count += 1
        except OSError as e:
            log.warning("cannot unmount a workspace", extra={"path": point, "error": str(e)})
    return count


class Workspaces:
    """The apps' directories under ``root/work``: plain, or each a capped tmpfs (see the module docstring)."""

    def __init__(self, root: Path, cap_bytes: int = 0, kept: int = 256) -> None:
        self.work = root / "work"
        self.scratch = root / "scratch"
        self.cap_bytes = cap_bytes  # 0: plain directories, no cap
        self.kept = max(1, kept)
        self._mounted: OrderedDict[str, Path] = OrderedDict()  # owner -> mount point, least recently used first
        self.dropped = 0

    @property
    def capped(self) -> bool:
        return self.cap_bytes > 0

    def app_dir(self, tenant: str, app: str) -> Path:
        return self.work / tenant / app

    def path(self, tenant: str, app: str) -> Path:
        """The workspace itself (what the build sees as the app)."""
        return self.app_dir(tenant, app) / WORKSPACE

    def startup(self) -> None:
        """With the root's lock held, before any build: detach what an earlier daemon left mounted.
        With a cap, the old content goes too (it is rewritten in full by the next build)."""
        self.work.mkdir(parents=True, exist_ok=True)
        left = detach_all(self.work)
        if left:
            log.warning("unmounted workspaces an earlier daemon left", extra={"count": left})
        if self.capped:
            for entry in os.listdir(self.work):
                shutil.rmtree(self.work / entry, ignore_errors=True)

    def ensure(self, tenant: str, app: str) -> Path:
        """The app's workspace, its tmpfs mounted first when there is a cap; marks it used."""
        owner = f"{tenant}/{app}"
        top = self.app_dir(tenant, app)
        if not self.capped:
            return top / WORKSPACE
        if owner in self._mounted and os.path.ismount(top):
            self._mounted.move_to_end(owner)
            return top / WORKSPACE
        top.mkdir(parents=True, exist_ok=True)
        if not os.path.ismount(top):
            for entry in os.listdir(top):  # whatever was there before the cap: not the app's anymore
                shutil.rmtree(top / entry, ignore_errors=True)
            _mount_tmpfs(top, self.cap_bytes)
        self._mounted[owner] = top
        self._mounted.move_to_end(owner)
        return top / WORKSPACE

    def scratch_parent(self, workspace: Path) -> Path:
        """Where a build's overlay dirs go: beside the workspace on its capped tmpfs, else ``scratch/``."""
        top = workspace.parent
        if self.capped and os.path.ismount(top):
            return top
        return self.scratch

    @contextmanager
    def overlay_scratch(self, workspace: Path, prefix: str) -> Iterator[Path]:
        """A dir for one build's overlay upper and work dirs (and its Vite cache staging), removed after."""
        path = self.scratch_parent(workspace) / f"{prefix}-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def candidates(self, keep: str) -> list[str]:
        """Owners beyond ``kept``, least recently used first (never ``keep``)."""
        over = len(self._mounted) - self.kept
        return [o for o in self._mounted if o != keep][:max(0, over)]

    def drop(self, owner: str) -> None:
        """Unmounts the app's tmpfs (its content is gone); the caller made sure nothing of the app runs."""
        top = self._mounted.pop(owner, None)
        if top is None:
            return
        try:
            _detach(top)
        except OSError as e:
            log.warning("cannot unmount a workspace", extra={"owner": owner, "error": str(e)})
            return
        self.dropped += 1
        log.info("workspace dropped", extra={"owner": owner, "kept": self.kept})

    async def trim(self, keep: str, busy: Callable[[str], bool], retire: Callable[[str], Awaitable[None]]) -> None:
        """Drops least recently used workspaces beyond ``kept``: an app busy building is skipped, one
        with a warm builder has it retired first (``retire`` is awaited, then busy is asked again)."""
        for owner in self.candidates(keep):
            if busy(owner):
                continue
            await retire(owner)
            if busy(owner) or owner not in self._mounted:
                continue
            self.drop(owner)

    def close(self) -> None:
        """At shutdown, once no build or builder is left: every workspace mount goes."""
        for owner in list(self._mounted):
            self.drop(owner)
        if self.capped:
            detach_all(self.work)
