"""Turns a SandboxSpec into the launcher's command line and its spec payload.

Shared by the runner and the probe so the probe tests exactly what builds use.
The spec travels in a memfd (never argv: the child's env may hold a tenant's
secrets, and argv is world-readable in /proc). This module must never pass
the daemon's environment on: the launcher gets an empty environment.
"""

from __future__ import annotations

import marshal
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .spec import SandboxSpec

ENTER_SCRIPT = str(Path(__file__).with_name("enter.py"))
# Fixed, so the daemon's own PATH never decides which unshare runs.
TOOL_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
LAUNCHER_ENV: dict[str, str] = {}


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    payload: bytes


def find_unshare() -> str | None:
    return shutil.which("unshare", path=TOOL_PATH)


def _real(p: os.PathLike[str] | str) -> str:
    return os.path.realpath(os.fspath(p))


def spec_payload(
    spec: SandboxSpec, userns: bool, cgroup_procs: Sequence[str] = (), parent: int = 0, egress: dict[str, int] | None = None
) -> bytes:
    """marshal (not json) because the init must start in milliseconds.

    ``cgroup_procs``: the run group's ``cgroup.procs`` files, which the launcher
    joins before anything else runs; ``parent``: the daemon's pid, which the
    launcher checks after setting its parent-death signal (if the daemon died
    in between, it exits at once); ``egress``: the socketpair end and port of
    the run's egress proxy (``egress.RunEgress.payload``), for a spec with
    ``egress``."""
    ov = spec.overlay
    data = {
        "argv": list(spec.argv),
        "env": dict(spec.env),
        "workspace": _real(spec.workspace),
        "hide": [_real(p) for p in spec.hide],
        "tmpfs": [_real(p) for p in spec.tmpfs],
        "binds": [(_real(s), _real(d), bool(rw)) for s, d, rw in spec.binds],
        "overlay": None
        if ov is None
        else {
            "lower": _real(ov.lower),
            "upper": _real(ov.upper),
            "work": _real(ov.work),
            # the target is usually workspace/node_modules: resolve through
            # the workspace only, it may not exist yet
            "target": os.path.join(_real(os.path.dirname(ov.target)), os.path.basename(ov.target)),
        },
        "uid": int(spec.uid),
        "gid": int(spec.gid),
        "userns": bool(userns),
        "cgroups": [str(p) for p in cgroup_procs],
        "parent": int(parent),
        "tmp_size": int(spec.limits.tmp_bytes) if spec.limits is not None else 0,
        "egress": dict(egress) if egress is not None else None,
        "view": spec.view.payload() if spec.view is not None else None,
    }
    return marshal.dumps(data)


def namespace_launch(
    spec: SandboxSpec, unshare: str, userns: bool, cgroup_procs: Sequence[str] = (), parent: int = 0,
    egress: dict[str, int] | None = None,
) -> Launch:
    """The argv for ``fd`` to be appended by the caller (it owns the memfd)."""
    argv = [unshare]
    if userns:
        argv += ["--user", "--map-root-user"]
    argv += ["--mount", "--pid", "--ipc", "--uts", "--propagation", "private"]
    if not spec.network:
        argv.append("--net")
    # -I: ignore PYTHON* vars and user site; -S: no site import (fast, and the
    # venv's .pth files are irrelevant: enter.py uses only the stdlib).
    argv += ["--", sys.executable, "-I", "-S", "-B", ENTER_SCRIPT]
    return Launch(argv=argv, payload=spec_payload(spec, userns, cgroup_procs, parent, egress))


def make_spec_fd(payload: bytes) -> int:
    """A memfd holding the payload, positioned at 0."""
    fd = os.memfd_create("cached-sandbox-spec", os.MFD_CLOEXEC)
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_status(fd: int, offset: int) -> str | None:
    """The init's status line written after the payload (see enter.py)."""
    raw = os.pread(fd, 8192, offset)
    if not raw:
        return None
    return raw.split(b"\n", 1)[0].decode(errors="replace")
