"""Runs one sandboxed child and owns its whole process tree until it is gone.

Modes:
- ``namespaces`` (and ``auto``, which insists on it): the child runs inside
  fresh mount/pid/ipc/uts(/net) namespaces set up by ``enter.py``. A spec
  with ``egress`` gets a network namespace whose one way out is the
  daemon's proxy to the registry, served for the run's lifetime
  (``egress.py``). As root the
  command runs as ``spec.uid``; otherwise in a user namespace where the
  daemon's uid is a capability-less root (``spec.uid``/``gid`` are ignored).
- ``off``: UNSAFE, no isolation at all: the argv runs directly with
  ``spec.env`` and ``cwd=workspace`` as the daemon's own user, sees the whole
  filesystem and network, and a grandchild that calls ``setsid()`` can
  outlive a kill. Only for machines without namespaces, set explicitly. No
  cgroup either: ``spec.limits`` are not enforced.

Limits (``cgroups.py``): given ``cgroups`` and a spec with ``limits``, each
run gets a cgroup of its own, which the launcher joins before it forks
anything; the group is killed (every pid in it) with the tree and removed
once the tree is dead. A run that failed and whose group counted an OOM kill
or a refused fork, or that left a tmpfs full, reports that limit in
``RunResult.limit``.

This module must never:
- pass the daemon's environment to a child (the child gets ``spec.env``,
  the launcher an empty environment);
- wait on the output consumer (pipes are drained continuously; the sink is
  called inline and must not block);
- return or re-raise before the process tree is dead (timeout and
  cancellation SIGKILL every process of the run's cgroup and the pid
  namespace's init, which takes every process of the namespace with it, then
  reap the launcher);
- spawn from any thread but the event loop's (the launcher's parent-death
  signal fires when the thread that forked it ends).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import time

from .cgroups import Cgroups, CgroupsUnavailable, RunGroup, format_bytes
from .egress import RunEgress, egress_fds, open_egress
from .launch import LAUNCHER_ENV, find_unshare, make_spec_fd, namespace_launch, read_status
from .probe import SandboxCapabilities, probe_sandbox
from .ring import DEFAULT_TAIL_LINES, LineSplitter, Tail
from .spec import OutputSink, RunResult, SandboxError, SandboxSpec, SandboxUnavailable, validate

log = logging.getLogger("cached.sandbox")

_READ_CHUNK = 64 * 1024
# After the child exits, how long its pipes may stay open (a leftover in
# ``off`` mode) before we stop reading.
_DRAIN_GRACE_S = 2.0
# After SIGKILL of the namespace's init, how long before we also kill the group.
_KILL_WAIT_S = 5.0

MODES = ("auto", "namespaces", "off")


class Sandbox:
    def __init__(
        self,
        mode: str = "auto",
        *,
        tail_lines: int = DEFAULT_TAIL_LINES,
        capabilities: SandboxCapabilities | None = None,
        cgroups: Cgroups | None = None,
    ) -> None:
        """Probe once (or take ``capabilities`` from a probe already made);
        refuse now, not at the first build, if namespaces are missing."""
        if mode not in MODES:
            raise ValueError(f"sandbox mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        self.cgroups = cgroups  # None: specs' limits are not enforced (the daemon always sets it)
        self.capabilities: SandboxCapabilities | None = None
        self._tail_lines = tail_lines
        self._unshare: str | None = None
        self._userns = False
        if mode == "off":
            log.warning("sandbox = off: builds run WITHOUT isolation, as the daemon's user")
            return
        caps = capabilities if capabilities is not None else probe_sandbox()
        unshare = find_unshare()
        if not caps.namespaces or unshare is None:
            raise SandboxUnavailable(
                f"Linux namespaces are not usable here ({caps.detail}); "
                "set `sandbox = off` explicitly to run builds without isolation (unsafe)"
            )
        self.capabilities = caps
        self._unshare = unshare
        self._userns = not caps.root
        log.info("sandbox: namespaces (%s)", caps.detail)

    def enforce_limits(self, owner: str) -> None:
        """Give every run with limits a cgroup under ``cached/<owner>`` (the
        daemon passes ``root_id(root)`` while it holds the root's lock); first
        kill whatever an earlier daemon of that root left there. Where cgroups
        cannot be had: SandboxUnavailable as root (builds must not run
        unlimited), a warning without root (user-namespace mode)."""
        if self.mode == "off":
            log.warning("sandbox = off: build limits (memory, processes, CPU share) are not enforced")
            return
        try:
            cgroups = Cgroups.open(owner)
        except CgroupsUnavailable as e:
            if self.capabilities is not None and self.capabilities.root:
                raise SandboxUnavailable(f"build limits need cgroups: {e}") from None
            log.warning("sandbox: build limits are not enforced: %s", e)
            return
        cgroups.reclaim()
        self.cgroups = cgroups
        log.info("sandbox: limits enforced with %s", cgroups.describe())

    def release_limits(self) -> None:
        """At shutdown, once no run is left: remove the parent cgroups."""
        cgroups, self.cgroups = self.cgroups, None
        if cgroups is not None:
            cgroups.close()

    async def run(self, spec: SandboxSpec, sink: OutputSink) -> RunResult:
        """Run to completion, timeout or cancellation; the tree is dead when
        this returns or raises. Raises SandboxError if the sandbox could not
        be set up (never a tenant's failure), ValueError for a bad spec."""
        self._check(spec)
        started = time.monotonic()
        tail = Tail(self._tail_lines)
        egress, spec = open_egress(spec, sink, tail, namespaced=self.mode != "off")  # spec.egress: the proxy (egress.py)
        try:
            proc, spec_fd, status_offset, group = await self._spawn(spec, egress=egress)
        except BaseException:
            if egress is not None:
                await asyncio.shield(egress.close())
            raise
        log.debug("sandbox: started pid %d: %s", proc.pid, spec.argv)
        try:
            timed_out = await self._supervise(proc, spec, sink, tail, group)
            returncode = proc.returncode if proc.returncode is not None else -signal.SIGKILL
            status = read_status(spec_fd, status_offset) if spec_fd >= 0 else None
            kind, value, full = _parse_status(status)
            if kind == "E":
                raise SandboxError(f"sandbox setup failed: {value}")
            if kind == "X":
                returncode = int(value)
            elif kind == "S":
                returncode = -int(value)
            if timed_out:
                returncode = -signal.SIGKILL
            limit = None if returncode == 0 or timed_out else _limit_of(group, spec, full, returncode)
            return RunResult(
                returncode=returncode,
                timed_out=timed_out,
                duration_s=time.monotonic() - started,
                tail=tail.lines(),
                limit=limit[0] if limit else None,
                limit_detail=limit[1] if limit else "",
            )
        finally:
            if spec_fd >= 0:
                os.close(spec_fd)
            if egress is not None:
                await asyncio.shield(egress.close())
            if group is not None:
                await asyncio.shield(_close_group(group))

    def _check(self, spec: SandboxSpec) -> None:
        validate(spec)
        if spec.overlay is not None:
            if self.capabilities is None:
                raise SandboxUnavailable(
                    "an overlay needs the namespaces sandbox; with `sandbox = off` "
                    "the caller must put node_modules in the workspace itself"
                )
            if not self.capabilities.overlay:
                raise SandboxUnavailable(f"overlayfs is not usable here ({self.capabilities.detail})")

    async def spawn(self, spec: SandboxSpec, stderr: OutputSink) -> "SandboxProcess":
        """Start a long-lived child with a stdin pipe and its stdout as a line
        stream (``SandboxProcess``); stderr lines go to ``stderr``. Same
        isolation as ``run``; ``spec.timeout`` (if any) caps its lifetime.
        The caller owns it: ``await proc.kill()`` ends the whole tree. A child
        that exits when its stdin closes (as the warm builder's driver does)
        cannot outlive the daemon, whose death closes that pipe."""
        self._check(spec)
        proc, spec_fd, status_offset, group = await self._spawn(spec, stdin=asyncio.subprocess.PIPE)
        log.debug("sandbox: spawned pid %d: %s", proc.pid, spec.argv)
        return SandboxProcess(self, proc, spec, spec_fd, status_offset, stderr, group)

    def _group(self, spec: SandboxSpec) -> RunGroup | None:
        if self.mode == "off" or self.cgroups is None or spec.limits is None:
            return None
        try:
            return self.cgroups.create(spec.label, spec.limits)
        except OSError as e:
            raise SandboxError(f"cannot create the run's cgroup: {e}") from e

    async def _spawn(
        self, spec: SandboxSpec, stdin: int = asyncio.subprocess.DEVNULL, egress: RunEgress | None = None,
    ) -> tuple[asyncio.subprocess.Process, int, int, RunGroup | None]:
        """Start the child (``off``) or the launcher; returns the process, the
        spec memfd (-1 in ``off`` mode), where the status line will be and the
        run's cgroup (None without limits)."""
        pipes = dict(
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # our own group: killpg reaches all of it
        )
        if self.mode == "off":
            proc = await asyncio.create_subprocess_exec(
                *spec.argv, env=dict(spec.env), cwd=spec.workspace, **pipes
            )
            if egress is not None:
                egress.launched()
            return proc, -1, 0, None
        assert self._unshare is not None
        group = self._group(spec)
        launch = namespace_launch(
            spec, self._unshare, self._userns,
            cgroup_procs=group.procs_files if group is not None else (), parent=os.getpid(),
            egress=egress.payload if egress is not None else None,
        )
        try:
            spec_fd = make_spec_fd(launch.payload)
        except BaseException:
            if group is not None:
                group.remove_now()
            raise
        try:
            proc = await asyncio.create_subprocess_exec(
                *launch.argv, str(spec_fd), env=dict(LAUNCHER_ENV), pass_fds=(spec_fd, *egress_fds(egress)), **pipes
            )
        except BaseException:
            os.close(spec_fd)
            if group is not None:
                group.kill_now()
                group.remove_now()
            raise
        if egress is not None:
            egress.launched()  # the launcher has its end: serve what it sends
        return proc, spec_fd, len(launch.payload), group

    async def _supervise(
        self, proc: asyncio.subprocess.Process, spec: SandboxSpec, sink: OutputSink, tail: Tail,
        group: RunGroup | None = None,
    ) -> bool:
        """Drain both pipes until exit or timeout; True if it timed out."""
        readers = [
            asyncio.ensure_future(_drain(proc.stdout, "stdout", sink, tail)),
            asyncio.ensure_future(_drain(proc.stderr, "stderr", sink, tail)),
        ]
        timed_out = False
        try:
            try:
                await asyncio.wait_for(proc.wait(), spec.timeout)
            except asyncio.TimeoutError:
                timed_out = True
                log.info("sandbox: %s timed out after %ss, killing its tree", spec.argv[0], spec.timeout)
                await self._kill_tree(proc, group)
            if self.mode == "off":
                _killpg(proc.pid)  # the group's leftovers, as the pid namespace would
            _done, pending = await asyncio.wait(readers, timeout=_DRAIN_GRACE_S)
            for task in pending:
                task.cancel()
        except BaseException:
            # Cancellation (or any error): nothing may outlive us.
            for task in readers:
                task.cancel()
            await asyncio.shield(self._kill_tree(proc, group))
            raise
        return timed_out

    async def _kill_tree(self, proc: asyncio.subprocess.Process, group: RunGroup | None = None) -> None:
        """SIGKILL every process of the run's cgroup (frozen ones included:
        the group is thawed after the signal), then the namespace's init: its
        death kills every process of the pid namespace and the launcher reaps
        it only after they are all gone, so once the launcher exits nothing is
        left. Before the init exists (cancelled during start-up) the process
        group kill is enough: an init forked meanwhile is in it, and dies by
        parent-death signal."""
        if group is not None:
            await group.kill()
        children = _children(proc.pid) if proc.returncode is None and self.mode != "off" else []
        if children:
            for child in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
            try:
                await asyncio.wait_for(proc.wait(), _KILL_WAIT_S)
            except asyncio.TimeoutError:
                log.warning("sandbox: launcher %d did not exit after its init was killed", proc.pid)
        _killpg(proc.pid)
        await proc.wait()


class _LineQueue:
    """The stdout lines of a spawned child, for one consumer. Bounded: past
    ``max_lines`` unread lines the oldest are dropped and counted (a consumer
    that stops reading never makes the daemon's memory grow)."""

    def __init__(self, max_lines: int) -> None:
        self._items: collections.deque[str] = collections.deque(maxlen=max_lines)
        self._event = asyncio.Event()
        self._closed = False
        self.dropped = 0

    def line(self, stream: str, text: str) -> None:
        if len(self._items) == self._items.maxlen:
            self.dropped += 1
        self._items.append(text)
        self._event.set()

    def close(self) -> None:
        self._closed = True
        self._event.set()

    async def get(self) -> str | None:
        """The next line, or None once the child's stdout is closed and read."""
        while not self._items:
            if self._closed:
                return None
            self._event.clear()
            await self._event.wait()
        return self._items.popleft()


class SandboxProcess:
    """A spawned sandboxed child (see ``Sandbox.spawn``): write to ``stdin``,
    read stdout lines with ``readline()``, ``await kill()`` to end its tree,
    ``await wait()`` for its exit status (as ``RunResult.returncode``)."""

    def __init__(
        self, sandbox: Sandbox, proc: asyncio.subprocess.Process, spec: SandboxSpec,
        spec_fd: int, status_offset: int, stderr: OutputSink, group: RunGroup | None = None,
        max_lines: int = 100_000,
    ) -> None:
        self._sandbox = sandbox
        self._proc = proc
        self._group = group
        self.limit: tuple[str, str] | None = None  # after an exit a limit explains
        self._spec_fd = spec_fd
        self._status_offset = status_offset
        self._lines = _LineQueue(max_lines)
        self.pid = proc.pid
        self.stdin = proc.stdin
        self.returncode: int | None = None
        self.killed = False
        self.tail = Tail(sandbox._tail_lines)
        self._done = asyncio.ensure_future(self._supervise(spec, stderr))

    async def _supervise(self, spec: SandboxSpec, stderr: OutputSink) -> int:
        try:
            try:
                await self._sandbox._supervise(self._proc, spec, _Split(self._lines, stderr), self.tail, self._group)
            finally:
                self._lines.close()
            returncode = self._proc.returncode if self._proc.returncode is not None else -signal.SIGKILL
            status = read_status(self._spec_fd, self._status_offset) if self._spec_fd >= 0 else None
            kind, value, full = _parse_status(status)
            if kind == "X":
                returncode = int(value)
            elif kind == "S":
                returncode = -int(value)
            elif kind == "E":
                log.warning("sandbox: setup of a spawned child failed: %s", value)
            if self.killed:
                returncode = -signal.SIGKILL
            elif returncode != 0:
                self.limit = _limit_of(self._group, spec, full, returncode)
            self.returncode = returncode
            return returncode
        finally:
            if self._spec_fd >= 0:
                os.close(self._spec_fd)
                self._spec_fd = -1
            if self._group is not None:
                await asyncio.shield(_close_group(self._group))

    async def readline(self) -> str | None:
        """The next stdout line; None once the child has closed its stdout."""
        return await self._lines.get()

    @property
    def alive(self) -> bool:
        return not self._done.done()

    @property
    def limited(self) -> bool:
        """Whether it runs in a cgroup of its own (``freeze``, ``memory_bytes`` work)."""
        return self._group is not None

    async def freeze(self) -> bool:
        """Stop every process of the tree until ``thaw``; True once all are frozen
        (False without a cgroup or if the kernel did not freeze them in time)."""
        if self._group is None or not self.alive:
            return False
        return await self._group.freeze()

    def thaw(self) -> None:
        if self._group is not None and not self._group.removed:
            self._group.thaw()

    def memory_bytes(self) -> int | None:
        """The tree's memory as its cgroup counts it (None without a cgroup)."""
        if self._group is None or self._group.removed:
            return None
        return self._group.memory_bytes()

    async def wait(self) -> int:
        return await asyncio.shield(self._done)

    async def kill(self) -> int:
        """SIGKILL the whole tree (as a run's timeout does) and reap it."""
        if not self._done.done():
            self.killed = True
            with contextlib.suppress(Exception):
                if self.stdin is not None:
                    self.stdin.close()
            await asyncio.shield(self._sandbox._kill_tree(self._proc, self._group))
        return await self.wait()

    def pids(self) -> list[int]:
        """The launcher and every process below it (for memory accounting)."""
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    todo.extend(int(p) for p in f.read().split())
            except OSError:
                continue
        return found


class _Split:
    """stdout lines to the line queue, stderr lines to the caller's sink."""

    def __init__(self, lines: _LineQueue, stderr: OutputSink) -> None:
        self._lines, self._stderr = lines, stderr

    def line(self, stream: str, text: str) -> None:
        if stream == "stdout":
            self._lines.line(stream, text)
        else:
            self._stderr.line(stream, text)


def _parse_status(status: str | None) -> tuple[str, str, list[str]]:
    """(kind, value, full tmpfs paths) of the init's status line (see enter.py)."""
    if status is None:
        return "", "", []
    kind, _, rest = status.partition(" ")
    if kind == "E":
        return kind, rest, []
    words = rest.split(" ")
    full = [p for w in words[1:] if w.startswith("full=") for p in w[5:].split(",") if p]
    return kind, words[0], full


def _limit_of(group: RunGroup | None, spec: SandboxSpec, full: list[str], returncode: int) -> tuple[str, str] | None:
    """Which limit explains a failed run: the group's OOM kill first, then a
    full tmpfs, then a refused fork."""
    hit = group.limit_hit(killed=returncode == -signal.SIGKILL) if group is not None else None
    if hit is not None and hit[0] == "memory":
        return hit
    if full and spec.limits is not None:
        return "tmp", f"{', '.join(full)} full (tmpfs size limit {format_bytes(spec.limits.tmp_bytes)})"
    if spec.limits is not None and spec.limits.write_bytes and _write_cap_full(spec.workspace, spec.limits.write_bytes):
        return "write", (f"build write limit of {format_bytes(spec.limits.write_bytes)} "
                         "(what a build writes into its workspace and node_modules, together)")
    return hit


def _write_cap_full(workspace: "os.PathLike[str] | str", cap: int) -> bool:
    """Whether the workspace is on the capped tmpfs of ``cap`` bytes and that is (almost) full."""
    try:
        st = os.statvfs(workspace)
    except OSError:
        return False
    size = st.f_blocks * st.f_frsize
    page = os.sysconf("SC_PAGE_SIZE")
    return size == -(-cap // page) * page and st.f_bavail * st.f_frsize < (64 << 10)


async def _close_group(group: RunGroup) -> None:
    try:
        await group.close()
    except OSError as e:  # the next daemon start reclaims it
        log.warning("sandbox: cannot remove cgroup %s: %s", group.name, e)


def _killpg(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


async def _drain(stream: asyncio.StreamReader | None, name: str, sink: OutputSink, tail: Tail) -> None:
    """Read until EOF, whatever the sink does; a failing sink loses lines,
    never the child's progress."""
    if stream is None:
        return
    splitter = LineSplitter()
    sink_failed = False
    while True:
        data = await stream.read(_READ_CHUNK)
        lines = splitter.feed(data) if data else splitter.close()
        for text in lines:
            tail.add(text)
            if sink_failed:
                continue
            try:
                sink.line(name, text)
            except Exception:  # noqa: BLE001 - the consumer's bug must not stall the child
                log.exception("sandbox: output sink failed; dropping further lines")
                sink_failed = True
        if not data:
            return
