"""Runs the install and build children in the sandbox, one step at a time.

The global semaphore is held only while a child runs, so a build waiting for
another's install never holds a slot. Every child runs under the daemon's
``RunLimits`` (its own cgroup); one stopped by a limit is ``LimitExceeded``
naming the limit and the ``cached serve`` option that raises it. A step with
``network=True`` (npm's install and resolution) reaches the registry and
nothing else: it runs in a network namespace of its own whose one way out is
the daemon's egress proxy to the registry (``cached/sandbox/egress.py``); no
step ever gets the host's network. Output lines go to the build's events
and to a bounded in-memory log; the full log is stored as a blob with the
result.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cached.errors import BuildFailed, BuildTimeout, LimitExceeded
from cached.sandbox import Overlay, RunLimits, RunResult, Sandbox, SandboxSpec
from cached.sandbox.egress import EgressPolicy
from cached.sandbox.view import View

log = logging.getLogger("cached.execution.steps")

MAX_LOG_BYTES = 4 << 20
# The `cached serve` option that raises each limit a child can hit.
LIMIT_OPTIONS = {"memory": "--build-memory", "pids": "--build-pids", "tmp": "--build-tmp-size", "write": "--build-write-size"}


@dataclass
class BuildLog:
    """The whole log of a build, bounded: past the limit only a count of dropped bytes is kept."""

    lines: list[str] = field(default_factory=list)
    size: int = 0
    dropped: int = 0

    def add(self, line: str) -> None:
        if self.size + len(line) > MAX_LOG_BYTES:
            self.dropped += len(line)
            return
        self.lines.append(line)
        self.size += len(line) + 1

    def text(self) -> bytes:
        body = "\n".join(self.lines)
        if self.dropped:
            body += f"\n[cached] {self.dropped} more bytes of log not kept"
        return body.encode("utf-8", errors="replace")


class _Sink:
    def __init__(self, source: str, emit: Callable[[str, str, str], None], build_log: BuildLog) -> None:
        self.source, self.emit, self.build_log = source, emit, build_log

    def line(self, stream: str, text: str) -> None:
        self.build_log.add(text)
        self.emit(stream, text, self.source)


class StepRunner:
    def __init__(self, sandbox: Sandbox, slots: asyncio.Semaphore, hide: Sequence[Path], uid: int, gid: int,
                 limits: RunLimits | None = None, egress: EgressPolicy | None = None, view: View | None = None) -> None:
        self.sandbox = sandbox
        self.view = view  # what every step sees of the host (cached/sandbox/view.py); None: all of it, read-only
        self.egress = egress  # the registry: the one origin a step with network=True reaches
        self.limits = limits
        self.slots = slots
        self.hide = tuple(hide)
        self.uid, self.gid = uid, gid
        self.processes_started = 0

    async def run(
        self,
        argv: list[str],
        *,
        source: str,
        workspace: Path,
        env: dict[str, str],
        network: bool,
        deadline: float,
        emit: Callable[[str, str, str], None],
        build_log: BuildLog,
        binds: Sequence[tuple[Path, Path, bool]] = (),
        overlay: Overlay | None = None,
        what: str,
    ) -> RunResult:
        """Runs one child; raises BuildFailed (with the log tail) or BuildTimeout.

        ``network``: the step fetches packages, so it reaches the registry
        (``self.egress``) and nothing else; without it, no network at all."""
        if network and self.egress is None:
            raise ValueError(f"{what} fetches packages, but no registry was configured for the steps")
        async with self.slots:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BuildTimeout(f"the build's deadline passed before {what} could start")
            spec = SandboxSpec(
                argv=argv, workspace=workspace, env=env, network=False, egress=self.egress if network else None, hide=self.hide,
                binds=tuple(binds), overlay=overlay, uid=self.uid, gid=self.gid, timeout=remaining,
                limits=self.limits, label=source, view=self.view,
            )
            self.processes_started += 1
            log.info("child start", extra={"step": source, "argv": argv, "workspace": str(workspace)})
            result = await self.sandbox.run(spec, _Sink(source, emit, build_log))
        log.info("child end", extra={"step": source, "rc": result.returncode, "seconds": round(result.duration_s, 3)})
        if result.timed_out:
            raise BuildTimeout(f"{what} did not finish before the build's deadline; its processes were killed")
        if result.limit is not None:
            raise limit_exceeded(what, result, emit, source, build_log)
        if result.returncode != 0:
            tail = "\n".join(result.tail[-30:])
            first = _first_errors(build_log.lines if build_log.lines else result.tail, shown=result.tail[-30:])
            cause = f" The first error:\n{first}\n" if first else ""
            raise BuildFailed(f"{what} failed with exit code {result.returncode}; fix the app and send it again.{cause} Last lines:\n{tail}", result.tail)
        return result


def limit_exceeded(what: str, result: RunResult, emit: Callable[[str, str, str], None], source: str, build_log: BuildLog) -> LimitExceeded:
    """The error for a child stopped by a limit; the log (and so its tail) says which and how to raise it."""
    option = LIMIT_OPTIONS.get(result.limit or "", "")
    raise_it = f"; the daemon's operator can raise it with `cached serve {option}`" if option else ""
    line = f"[cached] {what} was stopped by the {result.limit_detail or result.limit}{raise_it}"
    build_log.add(line)
    emit("stderr", line, "cached")
    tail = [*result.tail[-30:], line]
    return LimitExceeded(
        f"{what} exceeded a resource limit: the {result.limit_detail or result.limit} (exit code {result.returncode}){raise_it}. "
        "Last lines:\n" + "\n".join(tail), limit=result.limit or "", tail=tail,
    )


def _first_errors(lines: list[str], shown: list[str], limit: int = 4) -> str:
    """The first lines that say "error", when the tail does not show them (npm prints its reason first, then usage)."""
    found = [line for line in lines if "error" in line.lower() and line.strip().lower() not in ("npm error", "error")][:limit]
    return "" if not found or found[0] in shown else "\n".join(found)
