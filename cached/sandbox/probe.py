"""Finds out, once at daemon start-up, which isolation this machine offers.

It actually runs the launcher the builds use (a trivial command, then the
same with an overlay), because a kernel can advertise namespaces that a
container's seccomp or sysctl then refuses. It must never be called per
build (it costs a few process starts) and never raises: every failure is a
``False`` with its reason in ``detail``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .launch import LAUNCHER_ENV, TOOL_PATH, find_unshare, make_spec_fd, namespace_launch
from .spec import Overlay, SandboxSpec
from .view import minimal_view

_PROBE_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class SandboxCapabilities:
    namespaces: bool
    overlay: bool
    user_namespaces: bool
    root: bool
    detail: str


def _run_probe(spec: SandboxSpec, unshare: str, userns: bool) -> str | None:
    """None on success, else why it failed."""
    launch = namespace_launch(spec, unshare, userns)
    fd = make_spec_fd(launch.payload)
    try:
        proc = subprocess.run(
            [*launch.argv, str(fd)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=dict(LAUNCHER_ENV),
            pass_fds=(fd,),
            timeout=_PROBE_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    finally:
        os.close(fd)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        return f"rc {proc.returncode}: {err[-1] if err else 'no output'}"
    return None


def _user_namespaces(unshare: str) -> bool:
    try:
        proc = subprocess.run(
            [unshare, "--user", "--map-root-user", "--mount", "true"],
            stdin=subprocess.DEVNULL, capture_output=True, env=dict(LAUNCHER_ENV), timeout=_PROBE_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def probe_sandbox() -> SandboxCapabilities:
    root = os.geteuid() == 0
    unshare = find_unshare()
    if unshare is None:
        return SandboxCapabilities(False, False, False, root, f"util-linux `unshare` not found in {TOOL_PATH}")
    true = shutil.which("true", path=TOOL_PATH) or "/bin/true"
    userns_ok = _user_namespaces(unshare)
    userns = not root
    if userns and not userns_ok:
        return SandboxCapabilities(
            False, False, False, root,
            "not root and unprivileged user namespaces are disabled (`unshare --user` failed)",
        )
    notes = [f"{'root, setuid to the sandbox uid' if root else 'user namespace (not root)'}"]
    with tempfile.TemporaryDirectory(prefix="cached-probe-") as tmp:
        base = Path(tmp)
        ws = base / "ws"
        lower = base / "lower"
        for d in (ws, lower, base / "upper", base / "work"):
            d.mkdir()
        (lower / "probe").write_text("probe\n")
        os.chmod(tmp, 0o755)
        # with the builds' minimal view of the host (view.py): where it cannot be made, nothing runs
        plain = SandboxSpec(argv=[true], workspace=ws, env={"PATH": TOOL_PATH}, timeout=_PROBE_TIMEOUT_S, view=minimal_view())
        why = _run_probe(plain, unshare, userns)
        if why is not None:
            return SandboxCapabilities(False, False, userns_ok, root, f"namespaces unusable: {why}")
        overlaid = SandboxSpec(
            argv=[true], workspace=ws, env={"PATH": TOOL_PATH},
            overlay=Overlay(lower=lower, upper=base / "upper", work=base / "work", target=ws / "node_modules"),
        )
        why = _run_probe(overlaid, unshare, userns)
        overlay_ok = why is None
        notes.append("overlay ok" if overlay_ok else f"overlay unusable: {why}")
    return SandboxCapabilities(True, overlay_ok, userns_ok, root, "; ".join(notes))
