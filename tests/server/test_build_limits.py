"""Limits and lifetimes through a real daemon: a build over a limit is
RESOURCE_EXHAUSTED naming it, nothing of a build runs after it returned, and
every child dies with the daemon (and a new daemon kills what was left)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest

from cached.sandbox import Cgroups, CgroupsUnavailable, RunLimits, root_id
from cached_client import CachedError, Client
from support import WRITE_DIST, DaemonProcess, tiny_app


def cgroups_of(root: Path) -> Cgroups:
    """The same parent groups the daemon of ``root`` uses (it runs in our cgroups)."""
    try:
        return Cgroups.open(root_id(root.resolve()))
    except CgroupsUnavailable as e:
        pytest.skip(f"no usable cgroups here: {e}")


def start_time(pid: int) -> str | None:
    """When a live process started (None once it is gone or a zombie: dead, not yet reaped)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def stable_for(path: Path, seconds: float) -> tuple[int, int]:
    before = path.stat().st_size
    time.sleep(seconds)
    return before, path.stat().st_size


def test_a_fork_storm_is_resource_exhausted_naming_pids_and_the_daemon_goes_on(make_daemon) -> None:  # type: ignore[no-untyped-def]
    d: DaemonProcess = make_daemon(args=["--build-pids", "64"])
    storm = tiny_app("", script="for i in $(seq 500); do sleep 30 & done; wait")
    with Client(d.address) as client:
        with pytest.raises(CachedError) as info:
            client.build(files=storm, app="storm", tenant="t1", timeout_s=60)
        assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "process limit of 64 tasks" in info.value.details and "--build-pids" in info.value.details
        ok = client.build(files=tiny_app(WRITE_DIST), app="after-storm", tenant="t1")
    assert ok.cache == "miss" and [o.path for o in ok.outputs] == ["index.html"]
    assert cgroups_of(d.root).groups() == []


LINGER = """
import { spawn } from "node:child_process";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
// a detached writer in a session of its own, and a timer that does not keep Node alive
spawn("sh", ["-c", "while :; do echo x >> ticks-bg.log; sleep 0.02; done"], { detached: true, stdio: "ignore" }).unref();
setInterval(() => appendFileSync("ticks.log", "x"), 20).unref();
await new Promise((done) => setTimeout(done, 400));
mkdirSync("dist", { recursive: true });
writeFileSync("dist/index.html", "<p>done</p>\\n");
"""


def test_nothing_of_a_cold_build_runs_after_it_returned(daemon: DaemonProcess) -> None:
    with Client(daemon.address) as client:
        client.build(files=tiny_app(LINGER), app="linger", tenant="t1")
    workspace = daemon.root / "work" / "t1" / "linger" / "ws"
    for name in ("ticks-bg.log", "ticks.log"):  # the detached writer (killed with the pid namespace), the timer
        before, after = stable_for(workspace / name, 2.0 if name == "ticks-bg.log" else 0.1)
        assert before > 0, f"{name} was never written: the check would prove nothing"
        assert before == after, f"{name}: a process of the build kept writing after the build returned"


def test_every_child_dies_with_the_daemon_and_the_next_daemon_starts_clean(make_daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "root"
    d: DaemonProcess = make_daemon(root)
    groups = cgroups_of(root)
    failure: list[BaseException] = []

    def build() -> None:
        try:
            with Client(d.address) as client:
                client.build(files=tiny_app("", script="sleep 60"), app="sleeper", tenant="t1", timeout_s=120)
        except BaseException as e:  # noqa: BLE001 - the daemon dies under it
            failure.append(e)

    caller = threading.Thread(target=build)
    caller.start()
    deadline = time.monotonic() + 60
    members: dict[int, str | None] = {}
    while not any(b"sleep" in Path(f"/proc/{p}/cmdline").read_bytes() for p in members if start_time(p)):
        assert time.monotonic() < deadline, f"the build never started:\n{d.log()[-3000:]}"
        members = {p: start_time(p) for g in groups.groups() for p in g.pids()}
        time.sleep(0.05)
    assert len(members) >= 3  # launcher, init, sh/sleep: all in the build's cgroup
    assert d.proc is not None
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait()
    time.sleep(1.0)
    alive = [p for p, started in members.items() if start_time(p) == started]
    assert alive == [], f"still alive a second after the daemon died: {alive}"
    assert all(g.pids() == [] for g in groups.groups())
    caller.join(30)
    assert failure, "the build did not fail with the daemon"

    # Something an earlier daemon left in its cgroups (planted here) dies when the next one starts.
    planted = groups.create("build", RunLimits())
    leftover = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    try:
        for procs in planted.procs_files:
            Path(procs).write_text(str(leftover.pid))
        again: DaemonProcess = make_daemon(root)
        assert leftover.wait(timeout=10) == -signal.SIGKILL
        assert groups.groups() == []
        with Client(again.address) as client:
            assert client.build(files=tiny_app(WRITE_DIST), app="after", tenant="t1").outputs
    finally:
        leftover.kill()
