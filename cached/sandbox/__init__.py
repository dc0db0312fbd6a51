"""Runs tenants' untrusted npm and Vite processes in a Linux sandbox.

Public API: ``Sandbox(mode).run(spec, sink) -> RunResult``,
``Sandbox(mode).spawn(spec, stderr_sink) -> SandboxProcess`` (a long-lived
child with a stdin pipe and a stdout line stream) and ``probe_sandbox()``. See ``runner.py`` for the modes, ``enter.py`` for what
the child can see and why the workspace is chowned to the sandbox uid,
``cgroups.py`` for the per-run cgroups that enforce ``RunLimits``, ``view.py``
for the minimal view of the host every daemon child gets (``SandboxSpec.view``).

This package must never let a child see the daemon's environment, the store
or config directories it is told to hide, or outlive its ``run`` call (or
the daemon), or run a limited spec outside the cgroup made for it.
"""

from .cgroups import Cgroups, CgroupsUnavailable, RunGroup, root_id
from .probe import SandboxCapabilities, probe_sandbox
from .ring import QueueSink
from .runner import Sandbox, SandboxProcess
from .spec import (
    OutputSink,
    Overlay,
    RunLimits,
    RunResult,
    SandboxError,
    SandboxSpec,
    SandboxUnavailable,
)

__all__ = [
    "Cgroups",
    "CgroupsUnavailable",
    "OutputSink",
    "Overlay",
    "QueueSink",
    "RunGroup",
    "RunLimits",
    "RunResult",
    "Sandbox",
    "SandboxCapabilities",
    "SandboxError",
    "SandboxProcess",
    "SandboxSpec",
    "SandboxUnavailable",
    "probe_sandbox",
    "root_id",
]
