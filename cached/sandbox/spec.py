"""What a sandboxed run is asked to do and what it reports back.

Plain data only: this module must never start processes or read the daemon's
environment (``env`` is the child's complete environment, built by the
caller).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .egress import EgressPolicy
    from .view import View


class SandboxUnavailable(RuntimeError):
    """The requested isolation cannot be provided on this machine.

    Raised at construction, never mid-build, so a daemon refuses to start
    building rather than silently running tenants' code unconfined.
    """


class SandboxError(RuntimeError):
    """Setting up the sandbox failed (a daemon/host problem, not the build's).

    Kept apart from a non-zero ``RunResult.returncode`` so a broken mount is
    never reported to a tenant as their build failing.
    """


@dataclass(frozen=True)
class Overlay:
    """An overlayfs mounted at ``target``; ``lower`` is never written."""

    lower: Path
    upper: Path
    work: Path
    target: Path


@dataclass(frozen=True)
class RunLimits:
    """What one sandboxed run (or one warm builder) may use; enforced by its cgroup
    (``cgroups.py``) and, for ``tmp_bytes``, by the ``size=`` of each RAM-backed
    ``tmpfs`` mount. ``pids`` counts threads too (Node alone runs about ten)."""

    memory_bytes: int = 2 << 30
    pids: int = 512
    cpu_shares: int = 1024      # relative CPU weight (cgroup v1 cpu.shares; v2 cpu.weight is derived)
    tmp_bytes: int = 512 << 20  # each tmpfs (/tmp, /dev/shm) in the sandbox
    # the size of the tmpfs holding the workspace and the overlay's upper layer
    # (``cached/execution/workspaces.py``); 0: no cap. Enforced by that mount's
    # ``size=``; here only so that a run that filled it is reported as that limit
    write_bytes: int = 1 << 30

    def check(self) -> None:
        for name in ("memory_bytes", "pids", "cpu_shares", "tmp_bytes"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"limit {name} must be positive")
        if not 2 <= self.cpu_shares <= 262144:
            raise ValueError("cpu_shares must be between 2 and 262144")


@dataclass(frozen=True)
class SandboxSpec:
    argv: list[str]
    workspace: Path
    env: Mapping[str, str]
    network: bool = False
    hide: Sequence[Path] = ()
    binds: Sequence[tuple[Path, Path, bool]] = ()
    overlay: Overlay | None = None
    uid: int = 65534
    gid: int = 65534
    timeout: float | None = None
    tmpfs: Sequence[Path] = (Path("/tmp"), Path("/dev/shm"))
    # None: no cgroup and uncapped tmpfs (only for callers without a daemon: the probe, tests)
    limits: RunLimits | None = None
    label: str = "run"  # names the run's cgroup: install, build, warm...
    # a fetch step's one way out: its own network namespace (``network`` must be
    # False) whose only route is the daemon's proxy to this origin (``egress.py``);
    # honoured by ``Sandbox.run`` (elsewhere the run simply has no network)
    egress: EgressPolicy | None = None
    # what the run sees of the host (``view.py``): the system, the toolchain, a
    # minimal /etc and /dev, nothing else; None: the whole host, read-only
    # (callers without a daemon: the probe's overlay check, tests)
    view: View | None = None


@dataclass
class RunResult:
    returncode: int
    timed_out: bool
    duration_s: float
    tail: list[str] = field(default_factory=list)
    # set when the run failed and a limit explains it: "memory", "pids" or "tmp"
    limit: str | None = None
    limit_detail: str = ""  # e.g. "memory limit 2.0 GiB", "/tmp is full (512.0 MiB)"


class OutputSink(Protocol):
    """Receives each output line. ``line`` must not block: the runner calls it
    inline while draining the child's pipes, so a slow sink would stall the
    child. Queue the line (e.g. ``QueueSink``) and consume it elsewhere."""

    def line(self, stream: str, text: str) -> None: ...


_OVERLAY_UNSAFE = (",", ":", "\\", "\n")


def validate(spec: SandboxSpec) -> None:
    """Reject specs the launcher could misread, before any process starts."""
    if not spec.argv or not all(isinstance(a, str) and "\0" not in a for a in spec.argv):
        raise ValueError("argv must be a non-empty list of strings without NUL")
    for key, value in spec.env.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise ValueError(f"invalid environment variable {key!r}")
    paths = [spec.workspace, *spec.hide, *spec.tmpfs]
    if spec.view is not None:
        paths += spec.view.paths()
    for src, dst, _rw in spec.binds:
        paths += [src, dst]
    if spec.overlay is not None:
        ov = spec.overlay
        paths += [ov.lower, ov.upper, ov.work, ov.target]
        for p in (ov.lower, ov.upper, ov.work):
            if any(c in str(p) for c in _OVERLAY_UNSAFE):
                raise ValueError(f"overlay path {p} contains one of {_OVERLAY_UNSAFE!r}")
    for p in paths:
        if not Path(p).is_absolute() or "\0" in str(p):
            raise ValueError(f"sandbox paths must be absolute: {p}")
    if not os.path.isdir(spec.workspace):
        raise ValueError(f"workspace {spec.workspace} is not a directory")
    for src, _dst, _rw in spec.binds:
        if not os.path.exists(src):
            raise ValueError(f"bind source {src} does not exist")
    if spec.overlay is not None and not os.path.isdir(spec.overlay.lower):
        raise ValueError(f"overlay lower {spec.overlay.lower} is not a directory")
    if spec.egress is not None and spec.network:
        raise ValueError("a run with egress has its own network namespace: network must be False")
    if spec.timeout is not None and spec.timeout <= 0:
        raise ValueError("timeout must be positive")
    if spec.limits is not None:
        spec.limits.check()
