"""One warm builder: a sandboxed Node process running ``driver.mjs`` for one app.

It lives with its own overlay (upper and work dirs in a scratch dir of its
own, lower the app's read-only node_modules tree) mounted in its private
mount namespace at ``workspace/node_modules``, so the daemon must never remove
that directory while the builder lives (see ``WarmWorkspace``).

It runs in a cgroup of its own (the daemon's ``RunLimits``) and is frozen
whenever it is not serving a build: a timer or a watcher that the app's config
or a plugin started cannot run between builds (nor see the workspace while the
daemon rewrites it). A builder that cannot be frozen is stopped; one whose
build passes the deadline is killed. Its memory is what its cgroup counts.

This module must never write a build request to a builder that is still
frozen, or return from ``build`` leaving it thawed.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cached.warm import protocol
from cached.sandbox import SandboxProcess

log = logging.getLogger("cached.warm")

DRIVER = Path(__file__).with_name("driver.mjs")
Emit = Callable[[str, str], None]


class WarmError(Exception):
    """The warm build cannot be trusted or did not happen; ``reason`` is a metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class _Route:
    """The builder's stderr: to the build being served, if any; always into a short tail."""

    def __init__(self) -> None:
        self.target: Emit | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=40)

    def line(self, stream: str, text: str) -> None:
        self.tail.append(text)
        target = self.target
        if target is not None:
            try:
                target(stream, text)
            except Exception:  # noqa: BLE001 - a consumer's bug must not stall the child
                log.exception("warm builder: log consumer failed")


@dataclass
class Outcome:
    """What one build of the driver reported."""

    files: list[str]          # absolute paths the bundle wrote (writeBundle)
    public_dir: str           # the publicDir Vite copied into out_dir ("" when none or not copied)
    public_out: str           # where it copied it to (Vite's resolved outDir)
    out_dir: str              # build.outDir, absolute
    driver_ms: float
    wall_ms: float
    how: str = ""             # "rebuild" (the session's), "session-start" or "fresh" (see driver.mjs)
    why: str = ""             # why not a rebuild of the session


@dataclass
class WarmBuilder:
    owner: str
    key: str                  # everything the process was started with (see layer.builder_key)
    deps_key: str
    config: dict[str, str]    # the config files it was started with: path -> digest
    proc: SandboxProcess
    scratch: Path
    workspace: Path
    route: _Route
    started: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    builds: int = 0
    busy: bool = False
    info: dict[str, object] = field(default_factory=dict)
    _next_id: int = 0

    @property
    def alive(self) -> bool:
        return self.proc.alive

    async def wait_ready(self, timeout: float) -> None:
        async def read() -> None:
            while True:
                line = await self.proc.readline()
                if line is None:
                    raise WarmError("crashed", f"the builder exited while starting: {self._tail()}")
                event = protocol.parse(line)
                if event is not None and event.kind == protocol.READY:
                    self.info = dict(event.data)
                    return
        try:
            await asyncio.wait_for(read(), timeout)
        except asyncio.TimeoutError:
            raise WarmError("timeout", f"the builder was not ready after {timeout:.0f} s") from None

    async def pause(self) -> None:
        """Freeze the builder's whole tree until the next build; a builder that
        cannot be frozen is stopped (WarmError): it must not run unwatched."""
        if not self.proc.limited or not self.alive:
            return
        if not await self.proc.freeze():
            await self.stop()
            raise WarmError("freeze", "the builder could not be frozen between builds; it was stopped")

    async def build(self, timeout: float, emit: Emit, changed: list[str] | None = None,
                    removed: list[str] | None = None) -> Outcome:
        """Ask for one build and wait for ITS end (or error); lines of other ids are skipped.
        Thaws the builder for the build and freezes it again before returning;
        past ``timeout`` (the build's deadline) the builder is killed."""
        if not self.alive:
            raise WarmError("crashed", f"the builder is gone: {self._tail()}")
        self._next_id += 1
        ident = self._next_id
        started = time.perf_counter()
        deadline = time.monotonic() + timeout
        files: list[str] = []
        public: dict[str, object] = {}
        self.route.target = emit
        self.busy = True
        try:
            assert self.proc.stdin is not None
            try:
                self.proc.thaw()
            except OSError as e:
                await self.stop()
                raise WarmError("crashed", f"the builder could not be thawed ({e}); it was stopped") from None
            self.proc.stdin.write(protocol.build_request(ident, changed, removed))
            try:
                await asyncio.wait_for(self.proc.stdin.drain(), timeout)
            except asyncio.TimeoutError:
                await self.stop()
                raise WarmError("timeout", f"the warm build did not start within {timeout:.0f} s; the builder was stopped") from None

            async def read() -> Outcome:
                while True:
                    line = await self.proc.readline()
                    if line is None:
                        raise WarmError("crashed", f"the builder exited during the build: {self._tail()}")
                    event = protocol.parse(line)
                    if event is None or event.id != ident:
                        continue
                    if event.kind == protocol.FILE and isinstance(event.data.get("path"), str):
                        files.append(event.data["path"])
                    elif event.kind == protocol.PUBLIC:
                        public.update(event.data)
                    elif event.kind == protocol.ERROR:
                        raise WarmError("build_failed", str(event.data.get("message", ""))[:4000])
                    elif event.kind == protocol.END:
                        return Outcome(
                            how=str(event.data.get("how") or ""), why=str(event.data.get("why") or ""),
                            files=files, public_dir=str(public.get("dir") or ""), public_out=str(public.get("out") or ""),
                            out_dir=str(event.data.get("outDir") or ""), driver_ms=float(event.data.get("ms") or 0.0),
                            wall_ms=(time.perf_counter() - started) * 1000,
                        )
            try:
                outcome = await asyncio.wait_for(read(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                await self.stop()
                raise WarmError("timeout", f"the warm build did not end within {timeout:.0f} s; the builder was stopped") from None
            await self.pause()
            return outcome
        except (BrokenPipeError, ConnectionResetError) as e:
            await asyncio.shield(self._pause_or_stop())
            raise WarmError("crashed", f"the builder's stdin is closed ({e}): {self._tail()}") from None
        except BaseException:
            # A failed or cancelled build: frozen again if it lives (the layer
            # then retires it), never left running.
            await asyncio.shield(self._pause_or_stop())
            raise
        finally:
            self.route.target = None
            self.busy = False
            self.builds += 1
            self.last_used = time.monotonic()

    async def _pause_or_stop(self) -> None:
        try:
            await self.pause()
        except WarmError:
            pass

    def rss_bytes(self) -> int:
        """Memory of the whole process tree (launcher, sandbox init, node): what
        its cgroup counts (without the inactive file cache), else the sum of RSS."""
        counted = self.proc.memory_bytes()
        if counted is not None:
            return counted
        total = 0
        for pid in self.proc.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
                            break
            except OSError:
                continue
        return total

    async def stop(self) -> None:
        """Kill the tree, then drop its overlay scratch (nothing else holds it)."""
        try:
            await self.proc.kill()
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def _tail(self) -> str:
        return " | ".join(list(self.route.tail)[-8:]) or "(no output)"
