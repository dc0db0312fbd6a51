"""The daemon-not-root path: a user namespace instead of setuid.

Run for real by executing a small driver as uid 65534 (via setpriv) with the
system python, which that uid can read (the venv's interpreter lives under
/root here). Skipped, with the reason, when that is impossible.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534

DRIVER = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from pathlib import Path
    from cached.sandbox import Overlay, Sandbox, SandboxSpec

    class Sink:
        def __init__(self): self.out = []
        def line(self, stream, text): self.out.append((stream, text))

    async def main():
        base = Path(sys.argv[1])
        sb = Sandbox("auto")
        store = base / "store"
        ws = store / "work" / "a"
        script = (
            "id -u; grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status;"
            f" cat {store}/canary 2>&1; echo built > dist.txt && echo wrote;"
            " touch /var/tmp/cached-userns-probe 2>&1;"
            " echo x >> node_modules/dep.js 2>&1; cat node_modules/dep.js;"
            f" umount {store} 2>&1; true"
        )
        spec = SandboxSpec(
            argv=["sh", "-c", script], workspace=ws, env={"PATH": "/usr/bin:/bin"}, hide=[store],
            overlay=Overlay(base / "lower", base / "upper", base / "work", ws / "node_modules"), timeout=20,
        )
        sink = Sink()
        result = await sb.run(spec, sink)
        print(json.dumps({"caps": sb.capabilities.detail, "rc": result.returncode,
                          "stdout": [t for s, t in sink.out if s == "stdout"],
                          "env_leak": "USERNS_CANARY" in " ".join(t for _s, t in sink.out)}))

    asyncio.run(main())
    """
)


@pytest.fixture
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cached-userns-", dir="/tmp"))
    try:
        (path / "store" / "work" / "a").mkdir(parents=True)
        (path / "store" / "canary").write_text("USERNS-STORE-CANARY\n")
        for d in ("lower", "upper", "work"):
            (path / d).mkdir()
        (path / "lower" / "dep.js").write_text("dep\n")
        for p in [path, *path.rglob("*")]:
            os.chown(p, NOBODY, NOBODY, follow_symlinks=False)
        path.chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path)


def test_user_namespace_mode_as_unprivileged_daemon(base: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to become uid 65534 through setpriv")
    setpriv = shutil.which("setpriv")
    python = "/usr/bin/python3"
    if setpriv is None or not os.access(python, os.X_OK):
        pytest.skip("needs setpriv and /usr/bin/python3 to run a driver as uid 65534")
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info >= (3, 10))"],
                             capture_output=True, text=True)
    if version.stdout.strip() != "True":
        pytest.skip("/usr/bin/python3 is older than 3.10")
    if not os.access(REPO / "cached" / "sandbox" / "enter.py", os.R_OK) or (REPO.stat().st_mode & 0o005) != 0o005:
        pytest.skip(f"{REPO} is not readable by uid {NOBODY}")
    proc = subprocess.run(
        [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", python, "-c", DRIVER, str(base)],
        capture_output=True, text=True, timeout=60, cwd="/",
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "USERNS_CANARY": "leak"},
    )
    if proc.returncode != 0 and "user namespace" in proc.stderr:
        pytest.skip(f"unprivileged user namespaces unavailable: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    out = report["stdout"]
    assert "user namespace" in report["caps"]
    assert out[0] == "0"  # the daemon's uid is root inside, but powerless:
    status = dict(line.split(":\t") for line in out[1:4])
    assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0 and status["NoNewPrivs"] == "1"
    assert "No such file" in out[4]  # the hidden store
    assert out[5] == "wrote"
    assert "Read-only file system" in out[6]
    assert out[7:9] == ["dep", "x"]  # appended through the overlay (copy-up) ...
    assert (base / "lower" / "dep.js").read_text() == "dep\n"  # ... never into the lower tree
    assert (base / "upper" / "dep.js").read_text() == "dep\nx\n"
    assert "must be superuser" in out[9] or "ermission denied" in out[9] or "not permitted" in out[9]
    assert (base / "store" / "work" / "a" / "dist.txt").read_text() == "built\n"
    assert not report["env_leak"]
    assert report["rc"] == 0
