"""Miniflare (node) and workerd end with the command that started them, whatever signal ends it.

`cached deploy --serve` and `cached watch --deploy local` are started, fetched
over HTTP on 127.0.0.1, then sent SIGTERM, SIGHUP or SIGKILL. Every process
below the command (recorded from /proc/<pid>/task/*/children before the
signal) must be gone within a bounded wait, and the port must refuse
connections.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from rpc import build
from support import DaemonProcess, tiny_app

BUILD = """
import { mkdirSync, writeFileSync } from "node:fs";
mkdirSync("dist", { recursive: true });
writeFileSync("dist/index.html", "<h1>lifetime</h1>\\n");
"""
GONE_WITHIN_S = 5.0
SIGNALS = [pytest.param(signal.SIGTERM, id="SIGTERM"), pytest.param(signal.SIGHUP, id="SIGHUP"), pytest.param(signal.SIGKILL, id="SIGKILL")]

Proc = tuple[int, str, str]  # pid, start time (clock ticks since boot: tells a reused pid apart), name


def _stat(pid: int) -> tuple[str, str, str] | None:
    """(name, state, start time) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    name = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    return name, fields[0], fields[19]


def descendants(pid: int) -> list[Proc]:
    """Every process below ``pid``, children of each of its threads, recursively."""
    found: list[Proc] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                pids = [int(p) for p in children.read_text().split()]
            except (FileNotFoundError, ProcessLookupError):
                continue
            for child in pids:
                stat = _stat(child)
                if stat is not None:
                    found.append((child, stat[2], stat[0]))
                    todo.append(child)
    return found


def alive(procs: list[Proc]) -> list[Proc]:
    """The ones still running (a zombie has ended: only its exit status is left)."""
    out = []
    for pid, start, name in procs:
        stat = _stat(pid)
        if stat is not None and stat[2] == start and stat[1] not in "ZX":
            out.append((pid, start, name))
    return out


def refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def lines_of(proc: subprocess.Popen[str]) -> "queue.Queue[dict]":
    lines: queue.Queue[dict] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("{"):
                lines.put(json.loads(line))
    threading.Thread(target=read, daemon=True).start()
    return lines


def wait_for(proc: subprocess.Popen[str], lines: "queue.Queue[dict]", key: str, value: str | None = None, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = lines.get(timeout=0.5)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        if key in data and (value is None or data[key] == value):
            return data
    proc.kill()
    raise AssertionError(f"no line with {key}={value}; stderr: {proc.stderr.read() if proc.stderr else ''}")


def check_everything_ends(proc: subprocess.Popen[str], url: str, sig: signal.Signals) -> None:
    """Sends ``sig`` to the command; its Miniflare, workerd and port must be gone within GONE_WITHIN_S."""
    port = urlsplit(url).port
    assert port is not None and url.startswith("http://127.0.0.1:")
    procs = descendants(proc.pid)
    try:
        names = {name for _pid, _start, name in procs}
        assert "workerd" in names and "node" in names, procs  # what the check below is about
        assert "<h1>lifetime</h1>" in httpx.get(url + "/", trust_env=False, timeout=30).text
        proc.send_signal(sig)
        deadline = time.monotonic() + GONE_WITHIN_S
        while (alive(procs) or not refuses(port)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert alive(procs) == [], f"left running {GONE_WITHIN_S:.0f} s after {sig.name}: {alive(procs)}"
        assert refuses(port), f"127.0.0.1:{port} still accepts connections after {sig.name}"
        code = proc.wait(timeout=GONE_WITHIN_S)
        assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 0), proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid, _start, _name in alive(procs):  # a failed check leaves nothing behind
            os.kill(pid, signal.SIGKILL)


def cached(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cached", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("sig", SIGNALS)
def test_deploy_serve_takes_miniflare_and_workerd_along(daemon: DaemonProcess, miniflare_tools: Path, sig: signal.Signals) -> None:
    tenant, app = "lifetime", f"serve_{sig.name.lower()}"
    built = build(daemon.address, tiny_app(BUILD), tenant=tenant, app=app).result
    assert built.action_key
    proc = cached("deploy", "--server", daemon.address, "--tenant", tenant, "--app", app, "--target", "local", "--production",
                  "--serve", "--json")
    url = wait_for(proc, lines_of(proc), "serving")["serving"]
    check_everything_ends(proc, url, sig)


@pytest.mark.parametrize("sig", SIGNALS)
def test_watch_deploy_local_takes_miniflare_and_workerd_along(daemon: DaemonProcess, miniflare_tools: Path, tmp_path: Path,
                                                              sig: signal.Signals) -> None:
    app = tmp_path / f"watch_{sig.name.lower()}"
    for rel, content in tiny_app(BUILD).items():
        (app / rel).parent.mkdir(parents=True, exist_ok=True)
        (app / rel).write_bytes(content)
    proc = cached("watch", str(app), "--app", app.name, "--tenant", "lifetime", "--server", daemon.address, "--json",
                  "--deploy", "local")
    lines = lines_of(proc)
    url = wait_for(proc, lines, "event", "serving")["url"]
    wait_for(proc, lines, "event", "watching")
    check_everything_ends(proc, url, sig)
