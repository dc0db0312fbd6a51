"""`cached watch`: a save rebuilds through the daemon, only changed files travel, editor temp files are ignored."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cached.watch import is_ignored
from support import DaemonProcess, tiny_app

BUILD = """
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
mkdirSync("dist", { recursive: true });
writeFileSync("dist/index.html", "<h1>" + readFileSync("src/msg.txt", "utf8") + "</h1>\\n");
"""


def test_editor_temp_files_and_outputs_are_ignored() -> None:
    for rel in ("src/.App.tsx.swp", "src/App.tsx~", "src/.#App.tsx", "src/#App.tsx#", "4913", "src/x.tmp",
                "node_modules/a/index.js", ".git/HEAD", "dist/index.html", "src/App.tsx___jb_tmp___"):
        assert is_ignored(rel), rel
    for rel in ("src/App.tsx", "index.html", "public/robots.txt", ".env", "src/dist/x.ts"):
        assert not is_ignored(rel), rel


def start_watch(daemon: DaemonProcess, app: Path, *extra: str) -> tuple[subprocess.Popen[str], "queue.Queue[dict]"]:
    for rel, content in tiny_app(BUILD, extra={"src/msg.txt": b"one", "src/other.txt": b"x" * 2000}).items():
        (app / rel).parent.mkdir(parents=True, exist_ok=True)
        (app / rel).write_bytes(content)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cached", "watch", str(app), "--app", app.name, "--tenant", "watch", "--server", daemon.address,
         "--json", "--debounce-ms", "100", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: queue.Queue[dict] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(json.loads(l)) for l in proc.stdout if l.startswith("{")], daemon=True).start()  # type: ignore[union-attr]
    return proc, lines


def events_of(proc: subprocess.Popen[str], lines: "queue.Queue[dict]"):  # type: ignore[no-untyped-def]
    def next_event(kind: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                proc.kill()
                raise AssertionError(f"no {kind!r} event; stderr: {proc.stderr.read() if proc.stderr else ''}") from None
            if event["event"] == kind:
                return event
            assert event["event"] not in ("built", "failed"), event
    return next_event


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def test_watch_rebuilds_on_save_sends_only_changed_files_and_stops_on_ctrl_c(daemon: DaemonProcess, tmp_path: Path) -> None:
    app = tmp_path / "watched"
    proc, lines = start_watch(daemon, app)
    next_event = events_of(proc, lines)
    try:
        first = next_event("built")
        assert first["why"] == "initial build" and first["cache"] == "miss" and first["uploaded"] == 5  # every file goes by digest
        next_event("watching")
        (app / "src" / ".msg.txt.swp").write_bytes(b"vim swap")
        (app / "src" / "msg.txt~").write_bytes(b"backup")
        time.sleep(1.0)
        (app / "src" / "msg.txt").write_bytes(b"two")
        second = next_event("built")
        assert second["why"] == "src/msg.txt changed", second
        assert second["uploaded"] == 1 and second["files"] == 5  # package.json, lockfile, build.mjs, two sources (no temp files)
        assert second["reason"] == "sources_changed" and second["warm"] == "miss:not_eligible"
    finally:
        stop(proc)
    assert proc.returncode == 0
    assert next_event("stopped")["builds"] == 2


def test_watch_deploy_local_serves_the_latest_build(daemon: DaemonProcess, tmp_path: Path, miniflare_tools: Path) -> None:
    import httpx

    app = tmp_path / "served"
    proc, lines = start_watch(daemon, app, "--deploy", "local")
    next_event = events_of(proc, lines)
    try:
        next_event("built")
        url = next_event("serving")["url"]
        with httpx.Client(trust_env=False) as http:
            assert "<h1>one</h1>" in http.get(url + "/").text
            next_event("watching")
            (app / "src" / "msg.txt").write_bytes(b"two")
            next_event("built")
            assert next_event("serving")["url"] == url  # restarted on the new bundle, same port
            assert "<h1>two</h1>" in http.get(url + "/").text
    finally:
        stop(proc)
    assert proc.returncode == 0
