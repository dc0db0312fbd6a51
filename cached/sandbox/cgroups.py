"""One cgroup per sandboxed run and per warm builder: limits, freezing, and a kill that misses nothing.

Layout, in each hierarchy used (cgroup v1: ``memory``, ``pids``, ``freezer``
and ``cpu`` when mounted; cgroup v2: the unified hierarchy, chosen whenever
the daemon's own cgroup there offers the ``memory`` and ``pids`` controllers)::

    <the daemon's own cgroup>/cached/<root id>/<label>-<n>-<random>

``<root id>`` is derived from the store root's real path (``root_id``), so the
daemon holding a root's lock owns ``cached/<root id>`` (its *parent*): at
start-up it kills whatever an earlier daemon of the same root left in there
and removes those groups (``Cgroups.reclaim``). On v2, a daemon whose own
cgroup holds only itself moves into ``<own>/daemon`` so that controllers can
be enabled below ``<own>`` (cgroup v2 keeps processes out of inner nodes).

Each group gets a memory limit (v1 ``memory.limit_in_bytes`` and
``memory.memsw.limit_in_bytes``; v2 ``memory.max`` and ``memory.swap.max=0``),
a task limit (``pids.max``, threads included) and a CPU share (v1
``cpu.shares``; v2 ``cpu.weight``). The launcher (``enter.py``) writes its own
pid into the group's ``cgroup.procs`` files before it forks the sandbox's
init, so no process of the run exists outside the group. After a failed run
``limit_hit`` says which limit explains it: an OOM kill counted by the group
(v1 ``memory.oom_control``, v2 ``memory.events``), or a refused fork
(``pids.events``). A warm builder is frozen between builds (v1
``freezer.state``, v2 ``cgroup.freeze``); its memory is read from the group.

This module must never:
- create, write to, kill in or remove a cgroup outside its own parent;
- signal a process that is not listed in one of its groups;
- remove a group before every process in it is dead (``kill`` first: freeze,
  SIGKILL every listed pid, thaw, until the group is empty; a frozen process
  only dies once thawed);
- start a process (it runs inside the daemon, between forks that must stay few).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import itertools
import logging
import os
import re
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from .spec import RunLimits

log = logging.getLogger("cached.sandbox.cgroups")

V1_CONTROLLERS = ("memory", "pids", "freezer", "cpu")
V1_REQUIRED = ("memory", "pids", "freezer")
V2_REQUIRED = ("memory", "pids")
V2_ENABLE = ("memory", "pids", "cpu")
_KILL_WAIT_S = 5.0
_KILL_POLL_S = 0.01  # between the rounds of a kill
_FREEZE_WAIT_S = 2.0
_REMOVE_WAIT_S = 2.0
_LABEL = re.compile(r"[^a-z0-9_]+")
_counter = itertools.count(1)


class CgroupsUnavailable(RuntimeError):
    """This machine (or this daemon's place in it) offers no cgroups to limit runs with."""


def root_id(root: Path | str) -> str:
    """The name of a store root's parent group: the same for every daemon of that root."""
    return "r" + hashlib.sha256(os.fsencode(os.path.realpath(root))).hexdigest()[:16]


def format_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


# ------------------------------------------------------------ discovery


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _own_cgroups(proc: str) -> dict[str, str]:
    """controller ("" for the unified hierarchy) -> this process's cgroup path."""
    found: dict[str, str] = {}
    with open(os.path.join(proc, "cgroup")) as f:
        for line in f:
            parts = line.rstrip("\n").split(":", 2)
            if len(parts) != 3:
                continue
            _ident, controllers, path = parts
            if controllers == "":
                found[""] = path
            for name in controllers.split(","):
                if name:
                    found[name] = path
    return found


def _cgroup_mounts(proc: str) -> dict[str, tuple[str, str]]:
    """controller ("" for cgroup2) -> (mount point, root of the mount), first mount wins."""
    found: dict[str, tuple[str, str]] = {}
    with open(os.path.join(proc, "mountinfo")) as f:
        for line in f:
            left, sep, right = line.partition(" - ")
            fields, rest = left.split(), right.split()
            if not sep or len(fields) < 5 or len(rest) < 3:
                continue
            fstype, options = rest[0], rest[2]
            where = (_unescape(fields[4]), _unescape(fields[3]))
            if fstype == "cgroup2":
                found.setdefault("", where)
            elif fstype == "cgroup":
                for opt in options.split(","):
                    if opt in V1_CONTROLLERS:
                        found.setdefault(opt, where)
    return found


def _dir_of(mount: tuple[str, str], own: str) -> str | None:
    point, root = mount
    if root == "/":
        rel = own
    elif own == root or own.startswith(root.rstrip("/") + "/"):
        rel = own[len(root.rstrip("/")):]
    else:
        return None  # our cgroup is not visible through this mount
    return os.path.normpath(point + "/" + rel.lstrip("/"))


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _keyed(path: str) -> dict[str, int]:
    """A flat-keyed cgroup file ("name value" lines) as numbers; {} if absent."""
    try:
        text = _read(path)
    except OSError:
        return {}
    found: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            found[key] = int(value)
    return found


class Cgroups:
    """The daemon's parent group in each hierarchy, and the run groups below it."""

    def __init__(self, version: int, parents: dict[str, str], name: str) -> None:
        self.version = version
        self.parents = parents  # v1: controller -> parent dir; v2: {"": parent dir}
        self.name = name

    @classmethod
    def open(cls, name: str, *, proc: str = "/proc/self") -> "Cgroups":
        """Find the hierarchies, create the parent ``cached/<name>``; CgroupsUnavailable if it cannot."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name) or name in (".", ".."):
            raise ValueError(f"bad cgroup parent name {name!r}")
        try:
            own = _own_cgroups(proc)
            mounts = _cgroup_mounts(proc)
        except OSError as e:
            raise CgroupsUnavailable(f"cannot read {proc}/cgroup or mountinfo: {e}") from None
        unified = _dir_of(mounts[""], own[""]) if "" in mounts and "" in own else None
        if unified is not None:
            try:
                available = _read(os.path.join(unified, "cgroup.controllers")).split()
            except OSError:
                available = []
            if all(c in available for c in V2_REQUIRED):
                return cls._open_v2(name, unified)
        dirs = {c: _dir_of(mounts[c], own[c]) for c in V1_CONTROLLERS if c in mounts and c in own}
        missing = [c for c in V1_REQUIRED if dirs.get(c) is None]
        if missing:
            why = "no cgroup v2 hierarchy with the memory and pids controllers" if unified is None else f"the cgroup v2 hierarchy at {unified} lacks memory/pids"
            raise CgroupsUnavailable(f"{why}, and no cgroup v1 {', '.join(missing)} hierarchy")
        parents = {c: os.path.join(d, "cached", name) for c, d in dirs.items() if d is not None}
        try:
            for parent in parents.values():
                os.makedirs(parent, exist_ok=True)
        except OSError as e:
            raise CgroupsUnavailable(f"cannot create the parent cgroup {e.filename}: {e.strerror}") from None
        return cls(1, parents, name)

    @classmethod
    def _open_v2(cls, name: str, own: str) -> "Cgroups":
        try:
            _enable_v2(own, allow_move=True)
            cached = os.path.join(own, "cached")
            parent = os.path.join(cached, name)
            for d in (cached, parent):
                os.makedirs(d, exist_ok=True)
                _enable_v2(d, allow_move=False)
        except OSError as e:
            raise CgroupsUnavailable(f"cannot set up cgroup v2 groups under {own}: {e}") from None
        return cls(2, {"": parent}, name)

    def describe(self) -> str:
        where = ", ".join(sorted(self.parents.values()))
        return f"cgroup v{self.version} under {where}"

    # ------------------------------------------------------------ groups

    def create(self, label: str, limits: RunLimits) -> "RunGroup":
        """A new group with ``limits`` applied (OSError if the kernel refuses one)."""
        limits.check()
        safe = _LABEL.sub("-", label.lower()).strip("-")[:24] or "run"
        group = RunGroup(self, f"{safe}-{next(_counter)}-{secrets.token_hex(4)}", limits)
        try:
            for d in group.dirs.values():
                os.mkdir(d)
            group._apply(limits)
        except BaseException:
            group.remove_now()
            raise
        return group

    def groups(self) -> list["RunGroup"]:
        names: set[str] = set()
        for parent in self.parents.values():
            with contextlib.suppress(FileNotFoundError):
                names |= {e.name for e in os.scandir(parent) if e.is_dir(follow_symlinks=False)}
        return [RunGroup(self, n, None) for n in sorted(names)]

    def reclaim(self) -> int:
        """At start-up (with the root's lock held): kill every process an earlier
        daemon of this root left in its groups, then remove the groups. Returns
        how many processes were killed."""
        killed = 0
        for group in self.groups():
            killed += group.kill_now()
            group.remove_now()
        if killed:
            log.warning("killed %d processes an earlier daemon left in its cgroups", killed)
        return killed

    def close(self) -> None:
        """At shutdown, after every run ended: what is left is killed, and the
        parent groups are removed (kernel objects, not to pile up per root)."""
        self.reclaim()
        for parent in self.parents.values():
            with contextlib.suppress(OSError):
                os.rmdir(parent)


def _enable_v2(path: str, allow_move: bool) -> None:
    """Let the children of ``path`` have memory/pids(/cpu). Where ``path``
    holds processes (v2 forbids controllers below such a node) and the only
    one is this daemon, it moves into ``path/daemon`` first."""
    available = set(_read(os.path.join(path, "cgroup.controllers")).split())
    control = os.path.join(path, "cgroup.subtree_control")
    for name in V2_ENABLE:
        if name not in available or name in _read(control).split():
            continue
        try:
            _write(control, f"+{name}")
        except OSError as e:
            if e.errno != errno.EBUSY or not allow_move:
                if name in V2_REQUIRED:
                    raise
                continue
            procs = [int(p) for p in _read(os.path.join(path, "cgroup.procs")).split()]
            if procs != [os.getpid()]:
                raise CgroupsUnavailable(
                    f"the daemon's cgroup {path} holds other processes, so controllers cannot be enabled below it; "
                    "run the daemon in a cgroup of its own (systemd: Delegate=yes)"
                ) from None
            leaf = os.path.join(path, "daemon")
            os.makedirs(leaf, exist_ok=True)
            _write(os.path.join(leaf, "cgroup.procs"), str(os.getpid()))
            log.info("moved the daemon into %s so that its runs can have cgroups of their own", leaf)
            _write(control, f"+{name}")


class RunGroup:
    """One run's cgroup (one directory per hierarchy, all with the same members)."""

    def __init__(self, owner: Cgroups, name: str, limits: RunLimits | None) -> None:
        self.owner = owner
        self.name = name
        self.limits = limits
        self.dirs = {c: os.path.join(p, name) for c, p in owner.parents.items()}
        self.removed = False

    @property
    def v2(self) -> bool:
        return self.owner.version == 2

    def _dir(self, controller: str) -> str | None:
        return self.dirs.get("" if self.v2 else controller)

    @property
    def procs_files(self) -> list[str]:
        """Where the launcher writes its pid (every hierarchy's ``cgroup.procs``)."""
        return [os.path.join(d, "cgroup.procs") for d in self.dirs.values()]

    def _apply(self, limits: RunLimits) -> None:
        mem, pids = self._dir("memory"), self._dir("pids")
        assert mem is not None and pids is not None
        if self.v2:
            _write(os.path.join(mem, "memory.max"), str(limits.memory_bytes))
            if os.path.exists(os.path.join(mem, "memory.swap.max")):
                _write(os.path.join(mem, "memory.swap.max"), "0")
            _write(os.path.join(pids, "pids.max"), str(limits.pids))
            if os.path.exists(os.path.join(mem, "cpu.weight")):
                weight = max(1, min(10000, 1 + (limits.cpu_shares - 2) * 9999 // 262142))
                _write(os.path.join(mem, "cpu.weight"), str(weight))
            return
        _write(os.path.join(mem, "memory.limit_in_bytes"), str(limits.memory_bytes))
        memsw = os.path.join(mem, "memory.memsw.limit_in_bytes")
        if os.path.exists(memsw):  # no swapping around the limit
            _write(memsw, str(limits.memory_bytes))
        _write(os.path.join(pids, "pids.max"), str(limits.pids))
        cpu = self._dir("cpu")
        if cpu is not None:
            _write(os.path.join(cpu, "cpu.shares"), str(limits.cpu_shares))

    # ------------------------------------------------------------ state

    def pids(self) -> list[int]:
        """Every process in the group (any hierarchy; zombies are not listed)."""
        found: set[int] = set()
        for d in self.dirs.values():
            with contextlib.suppress(OSError):
                found.update(int(p) for p in _read(os.path.join(d, "cgroup.procs")).split())
        return sorted(found)

    def memory_bytes(self) -> int:
        """Memory charged to the group minus the inactive file cache (what the kernel cannot just drop)."""
        mem = self._dir("memory")
        if mem is None:
            return 0
        try:
            usage = int(_read(os.path.join(mem, "memory.current" if self.v2 else "memory.usage_in_bytes")))
        except (OSError, ValueError):
            return 0
        stat = _keyed(os.path.join(mem, "memory.stat"))
        inactive = stat.get("inactive_file" if self.v2 else "total_inactive_file", 0)
        return max(0, usage - inactive)

    def limit_hit(self, killed: bool = True) -> tuple[str, str] | None:
        """Which limit explains a failed run: ("memory" | "pids", words), or None."""
        mem, pids = self._dir("memory"), self._dir("pids")
        if mem is not None:
            events = _keyed(os.path.join(mem, "memory.events" if self.v2 else "memory.oom_control"))
            if "oom_kill" in events:
                hit = events["oom_kill"] > 0
            else:  # an older kernel without the count: the limit was reached and the run was killed
                hit = killed and (events.get("max", 0) > 0 if self.v2 else _read_int(os.path.join(mem, "memory.failcnt")) > 0)
            if hit:
                limit = self.limits.memory_bytes if self.limits else 0
                return "memory", f"memory limit {format_bytes(limit)}" if limit else "memory limit"
        if pids is not None and _keyed(os.path.join(pids, "pids.events")).get("max", 0) > 0:
            limit = self.limits.pids if self.limits else 0
            return "pids", f"process limit of {limit} tasks (pids.max, threads included)" if limit else "process limit"
        return None

    # ------------------------------------------------------------ freezing

    def _set_frozen(self, frozen: bool) -> None:
        if self.v2:
            _write(os.path.join(self.dirs[""], "cgroup.freeze"), "1" if frozen else "0")
        else:
            freezer = self._dir("freezer")
            assert freezer is not None
            _write(os.path.join(freezer, "freezer.state"), "FROZEN" if frozen else "THAWED")

    def is_frozen(self) -> bool:
        try:
            if self.v2:
                return _keyed(os.path.join(self.dirs[""], "cgroup.events")).get("frozen") == 1
            freezer = self._dir("freezer")
            return freezer is not None and _read(os.path.join(freezer, "freezer.state")).strip() == "FROZEN"
        except OSError:
            return False

    async def freeze(self, timeout: float = _FREEZE_WAIT_S) -> bool:
        """Stop every process of the group; True once the kernel says all are frozen."""
        try:
            self._set_frozen(True)
        except OSError as e:
            log.warning("cgroup %s: cannot freeze: %s", self.name, e)
            return False
        deadline = time.monotonic() + timeout
        while not self.is_frozen():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    def thaw(self) -> None:
        self._set_frozen(False)

    # ------------------------------------------------------------ the end

    def _kill_round(self) -> list[int]:
        pids = self.pids()
        if not pids:
            return []
        with contextlib.suppress(OSError):
            self._set_frozen(True)  # no fork in between: what is listed is everything
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self._set_frozen(False)  # a frozen process dies only once thawed
        return pids

    def _kill_v2(self) -> None:
        if self.v2:
            with contextlib.suppress(OSError):
                _write(os.path.join(self.dirs[""], "cgroup.kill"), "1")

    def _killing(self, timeout: float, seen: set[int]) -> Iterator[None]:
        """The rounds of a kill, adding the pids of each to ``seen``: yields
        when the caller is to wait before the next, ends once the group is
        empty (or gives up after ``timeout``)."""
        self._kill_v2()
        deadline = time.monotonic() + timeout
        while round_ := self._kill_round():
            seen.update(round_)
            if time.monotonic() > deadline:
                log.error("cgroup %s: %d processes survived SIGKILL for %.0f s", self.name, len(round_), timeout)
                return
            yield

    async def kill(self, timeout: float = _KILL_WAIT_S) -> int:
        """SIGKILL everything in the group until it is empty; returns how many pids were seen."""
        seen: set[int] = set()
        for _ in self._killing(timeout, seen):
            await asyncio.sleep(_KILL_POLL_S)
        return len(seen)

    def kill_now(self, timeout: float = _KILL_WAIT_S) -> int:
        """The same, blocking (start-up only)."""
        seen: set[int] = set()
        for _ in self._killing(timeout, seen):
            time.sleep(_KILL_POLL_S)
        return len(seen)

    def remove_now(self) -> bool:
        """rmdir the group in every hierarchy (after ``kill``); False if one is still busy."""
        ok = True
        deadline = time.monotonic() + _REMOVE_WAIT_S
        for d in self.dirs.values():
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        log.warning("cgroup %s: cannot remove %s: %s", self.name, d, e)
                        ok = False
                        break
                    time.sleep(0.005)
        self.removed = True
        return ok

    async def close(self) -> None:
        """Kill what is left (normally nothing: the run's tree is dead), then remove."""
        if self.removed:
            return
        if self.pids():
            await self.kill()
        self.remove_now()


def _read_int(path: str) -> int:
    try:
        return int(_read(path).strip() or 0)
    except (OSError, ValueError):
        return 0
