"""`cached deploy` and `cached rollback` from the command line, through the daemon."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from apps import spa_app
from rpc import build
from support import DaemonProcess


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cached", *args], capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


def test_deploy_and_rollback_commands(deploy_daemon: DaemonProcess, miniflare_tools: Path) -> None:
    tenant, app = "t4", "cli"
    server = ["--server", deploy_daemon.address, "--tenant", tenant, "--app", app]
    first = build(deploy_daemon.address, spa_app(js="first();\n"), tenant=tenant, app=app).result
    out = cli("deploy", *server, "--target", "local", "--production", "--var", "MODE=one", "--secret", "CLI_SECRET", "--json",
              env={"CLI_SECRET": "s3cr3t-value-do-not-log"})
    assert out.returncode == 0, out.stderr
    one = json.loads(out.stdout)
    assert one["sequence"] == 1 and one["action_key"] == first.action_key and one["environment"] == "production"
    assert "s3cr3t-value-do-not-log" not in out.stdout

    second = build(deploy_daemon.address, spa_app(js="second();\n"), tenant=tenant, app=app).result
    two = json.loads(cli("deploy", *server, "--target", "local", "--production", "--json").stdout)
    assert two["sequence"] == 2 and two["action_key"] == second.action_key

    back = cli("rollback", *server, "--target", "local")
    assert back.returncode == 0, back.stderr
    assert "rolled back t4/cli version 1 (production) on local" in back.stdout

    missing = cli("rollback", "--server", deploy_daemon.address, "--tenant", tenant, "--app", "never_deployed", "--target", "local")
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr

    # --serve: the bundle of the deployed version, on 127.0.0.1, until interrupted.
    proc = subprocess.Popen(
        [sys.executable, "-m", "cached", "deploy", *server, "--target", "local", "--action", first.action_key, "--serve"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = ""
        while "serving" not in line:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
        url = line.split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        health = httpx.get(url + "/__cached/health", trust_env=False).json()
        assert health["action_key"] == first.action_key and health["version"] == 3
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
