"""Limits, enforced: each run in a cgroup of its own (memory, processes, CPU
share), a size-capped /tmp, freezing, and a kill that reaches every process.

Real cgroups (v1 here and in CI: memory, pids, cpu, freezer), real
namespaces; the limits are small so that each test takes well under a second.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from cached.errors import LimitExceeded
from cached.execution.steps import BuildLog, StepRunner
from cached.sandbox import Cgroups, CgroupsUnavailable, RunLimits, Sandbox, SandboxSpec
from sbx_support import BASE_ENV, ListSink, processes_with, run

SMALL = RunLimits(memory_bytes=96 << 20, pids=64, cpu_shares=512, tmp_bytes=16 << 20)
REPO = Path(__file__).resolve().parents[2]


def steps(sandbox: Sandbox, limits: RunLimits = SMALL) -> StepRunner:
    return StepRunner(sandbox, asyncio.Semaphore(2), (), 65534, 65534, limits)


def run_step(runner: StepRunner, argv: list[str], ws: Path, log: BuildLog | None = None) -> list[tuple[str, str, str]]:
    emitted: list[tuple[str, str, str]] = []
    run(runner.run(
        argv, source="build", workspace=ws, env=BASE_ENV, network=False, deadline=time.monotonic() + 30,
        emit=lambda stream, line, source: emitted.append((stream, line, source)), build_log=log or BuildLog(), what="the build script",
    ))
    return emitted


def test_a_fork_storm_is_stopped_by_pids_max_and_named(limited: Sandbox, cgroups: Cgroups, ws: Path, marker: str) -> None:
    storm = f"const {{ spawn }} = require('node:child_process'); for (let i = 0; i < 300; i++) spawn('sleep', ['30'], {{ stdio: 'ignore' }}).on('error', () => process.exit(3)); setTimeout(() => {{}}, 30000); // {marker}"
    log = BuildLog()
    with pytest.raises(LimitExceeded) as info:
        run_step(steps(limited), ["node", "-e", storm], ws, log)
    assert info.value.limit == "pids"
    assert "process limit of 64 tasks" in str(info.value) and "--build-pids" in str(info.value)
    assert "--build-pids" in log.lines[-1]  # the build's log tail says which limit and how to raise it
    assert processes_with(marker) == []
    assert cgroups.groups() == []  # the group went with the tree
    # the daemon goes on: the next run is fine
    assert run_step(steps(limited), ["sh", "-c", "echo fine"], ws)[-1][1] == "fine"


def test_a_shell_fork_loop_is_stopped_by_pids_max(limited: Sandbox, ws: Path) -> None:
    result = run(limited.run(SandboxSpec(argv=["sh", "-c", "for i in $(seq 500); do sleep 30 & done; wait"], workspace=ws, env=BASE_ENV, timeout=30, limits=SMALL), ListSink()))
    assert result.returncode != 0 and result.limit == "pids", (result, result.tail)
    assert result.duration_s < 10  # stopped, not timed out


def test_a_memory_hog_is_killed_by_the_memory_limit(limited: Sandbox, ws: Path) -> None:
    hog = "const kept = []; for (;;) kept.push(Buffer.alloc(1 << 20, 1));"
    with pytest.raises(LimitExceeded) as info:
        run_step(steps(limited), ["node", "-e", hog], ws)
    assert info.value.limit == "memory"
    assert "memory limit 96.0 MiB" in str(info.value) and "--build-memory" in str(info.value)
    assert "the build script was stopped by the memory limit" in info.value.tail[-1]


def test_filling_tmp_is_stopped_by_its_size_cap(limited: Sandbox, ws: Path) -> None:
    filler = ["sh", "-c", "dd if=/dev/zero of=/tmp/fill bs=1M count=100"]
    with pytest.raises(LimitExceeded) as info:
        run_step(steps(limited), filler, ws)
    assert info.value.limit == "tmp"
    assert "/tmp full (tmpfs size limit 16.0 MiB)" in str(info.value) and "--build-tmp-size" in str(info.value)
    # within the cap it is an ordinary /tmp, and /dev/shm has the same cap
    out = run_step(steps(limited), ["sh", "-c", "dd if=/dev/zero of=/tmp/ok bs=1M count=8 2>/dev/null && df -k /tmp /dev/shm | tail -n 2"], ws)
    sizes = [line.split()[1] for _s, line, _src in out]
    assert sizes == ["16384", "16384"], out


def test_a_failure_that_is_no_limit_stays_a_build_failure(limited: Sandbox, ws: Path) -> None:
    from cached.errors import BuildFailed

    with pytest.raises(BuildFailed):
        run_step(steps(limited), ["sh", "-c", "exit 3"], ws)


def test_the_command_runs_in_its_own_group_with_the_limits(limited: Sandbox, cgroups: Cgroups, ws: Path) -> None:
    if cgroups.version != 1:
        pytest.skip("this test reads the cgroup v1 control files; on a v2 host the choice of v2 has its own test")

    async def scenario() -> tuple[list[str], dict[str, str], list[int]]:
        spec = SandboxSpec(argv=["sh", "-c", "cat /proc/self/cgroup; exec sleep 30"], workspace=ws, env=BASE_ENV, limits=SMALL, label="build")
        sink = ListSink()
        proc = await limited.spawn(spec, sink)
        lines = [await proc.readline() for _ in range(3)]
        group = proc._group
        assert group is not None
        values = {
            "memory": Path(group.dirs["memory"], "memory.limit_in_bytes").read_text().strip(),
            "pids": Path(group.dirs["pids"], "pids.max").read_text().strip(),
            "cpu": Path(group.dirs["cpu"], "cpu.shares").read_text().strip(),
        }
        await asyncio.sleep(0.1)  # cat gone
        members, tree = group.pids(), proc.pids()
        await proc.kill()
        assert sorted(tree) == members  # launcher, init, the command: nothing of the run outside the group
        return [line for line in lines if line], values, members

    lines, values, members = run(scenario())
    assert values == {"memory": str(96 << 20), "pids": "64", "cpu": "512"}
    mine = {line.split(":", 2)[1]: line.split(":", 2)[2] for line in lines}
    assert all(path.endswith(("/build-" + path.rsplit("/build-", 1)[-1])) for path in mine.values() if path != "/")
    assert "/cached/" in next(p for c, p in mine.items() if "pids" in c)
    assert len(members) == 3
    assert cgroups.groups() == []


@pytest.mark.parametrize("delay", [0, 0.01, 0.03, 0.1])
def test_cancel_at_any_point_leaves_no_process_and_no_group(limited: Sandbox, cgroups: Cgroups, ws: Path, marker: str, delay: float) -> None:
    async def scenario() -> None:
        spec = SandboxSpec(argv=["sh", "-c", f"sleep 1000; true {marker}"], workspace=ws, env=BASE_ENV, limits=SMALL)
        task = asyncio.create_task(limited.run(spec, ListSink()))
        await asyncio.sleep(delay)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cgroups.groups() == []

    run(scenario())
    deadline = time.monotonic() + 2
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert processes_with(marker) == []


def test_a_frozen_child_does_nothing_until_thawed_and_dies_frozen(limited: Sandbox, cgroups: Cgroups, ws: Path, marker: str) -> None:
    ticks = ws / "ticks"

    async def grows(seconds: float) -> bool:
        before = ticks.stat().st_size if ticks.exists() else 0
        await asyncio.sleep(seconds)
        return (ticks.stat().st_size if ticks.exists() else 0) > before

    async def scenario() -> None:
        script = f"while :; do echo x >> ticks; sleep 0.02; done # {marker}"
        proc = await limited.spawn(SandboxSpec(argv=["sh", "-c", script], workspace=ws, env=BASE_ENV, limits=SMALL), ListSink())
        assert await grows(0.5)
        assert await proc.freeze()
        await asyncio.sleep(0.1)
        assert not await grows(1.0)
        proc.thaw()
        assert await grows(0.5)
        assert await proc.freeze()
        assert await proc.kill() == -signal.SIGKILL  # killed while frozen: no wait for a thaw
        assert not proc.alive

    run(scenario())
    assert processes_with(marker) == []
    assert cgroups.groups() == []


def test_memory_is_read_from_the_group(limited: Sandbox, ws: Path) -> None:
    async def scenario() -> tuple[int, int]:
        script = "const keep = Buffer.alloc(48 << 20, 1); console.log('ready'); setInterval(() => keep[0]++, 1000);"
        proc = await limited.spawn(SandboxSpec(argv=["node", "-e", script], workspace=ws, env=BASE_ENV, limits=RunLimits()), ListSink())
        assert await proc.readline() == "ready"
        counted = proc.memory_bytes()
        await proc.freeze()
        frozen = proc.memory_bytes()
        await proc.kill()
        return counted or 0, frozen or 0

    counted, frozen = run(scenario())
    assert 48 << 20 <= counted < 400 << 20 and frozen >= 48 << 20


def test_reclaim_kills_what_an_earlier_daemon_left(cgroups: Cgroups) -> None:
    name = f"test-left-{uuid.uuid4().hex[:8]}"
    earlier = Cgroups.open(name)
    group = earlier.create("build", SMALL)
    left = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    try:
        for procs in group.procs_files:
            Path(procs).write_text(str(left.pid))
        assert group.pids() == [left.pid]
        assert group.is_frozen() is False and group._set_frozen(True) is None  # even frozen (a warm builder)
        later = Cgroups.open(name)
        assert later.reclaim() == 1
        assert left.wait(timeout=5) == -signal.SIGKILL
        assert later.groups() == []
        assert not any(os.path.exists(d) for d in group.dirs.values())
    finally:
        left.kill()
        for parent in earlier.parents.values():
            os.rmdir(parent)


HOLDER = """
import asyncio, sys
sys.path[:0] = [{repo!r}]
from pathlib import Path
from cached.sandbox import Sandbox, SandboxSpec, Cgroups, RunLimits
sandbox = Sandbox("namespaces", cgroups=Cgroups.open({name!r}))
spec = SandboxSpec(argv=["sh", "-c", "sleep 1000; true " + {reversed_marker!r}[::-1]], workspace=Path({ws!r}), env={{"PATH": "/usr/bin:/bin"}}, limits=RunLimits())
class Sink:
    def line(self, stream, text): pass
asyncio.run(sandbox.run(spec, Sink()))
"""


def test_every_child_dies_with_the_process_that_started_it(cgroups: Cgroups, limited: Sandbox, ws: Path, marker: str) -> None:
    """PR_SET_PDEATHSIG on the launcher: kill -9 of the daemon-like parent takes the tree with it."""
    name = f"test-holder-{uuid.uuid4().hex[:8]}"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLDER.format(repo=str(REPO), name=name, reversed_marker=marker[::-1], ws=str(ws)))])
    try:
        deadline = time.monotonic() + 20
        while not processes_with(marker):
            assert time.monotonic() < deadline and holder.poll() is None, "the sandboxed child never started"
            time.sleep(0.05)
        holder.kill()
        holder.wait()
        time.sleep(1.0)
        assert processes_with(marker) == []
    finally:
        holder.kill()
        leftover = Cgroups.open(name)
        assert leftover.reclaim() == 0  # nothing for the next daemon to kill
        for parent in leftover.parents.values():
            os.rmdir(parent)


def test_cgroup_v2_is_chosen_where_the_unified_hierarchy_has_the_controllers(tmp_path: Path) -> None:
    """A fake cgroup2 tree (plain directories): the files a v2 group is set up with."""
    own = tmp_path / "cg2" / "svc"
    for d in (own, own / "cached", own / "cached" / "r1"):
        d.mkdir(parents=True)
        (d / "cgroup.controllers").write_text("cpu memory pids\n")
        (d / "cgroup.subtree_control").write_text("")
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text("0::/svc\n")
    (proc / "mountinfo").write_text(f"40 31 0:38 / {tmp_path / 'cg2'} rw,relatime - cgroup2 cgroup2 rw\n")
    groups = Cgroups.open("r1", proc=str(proc))
    assert groups.version == 2 and groups.parents == {"": str(own / "cached" / "r1")}
    group = groups.create("warm", RunLimits(memory_bytes=1 << 30, pids=100, cpu_shares=1024))
    d = Path(group.dirs[""])
    assert group.procs_files == [str(d / "cgroup.procs")]
    assert (d / "memory.max").read_text() == str(1 << 30) and (d / "pids.max").read_text() == "100"
    assert group.limit_hit() is None
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert group.limit_hit() == ("memory", "memory limit 1.0 GiB")
    (d / "memory.events").write_text("oom_kill 0\n")
    (d / "pids.events").write_text("max 7\n")
    assert group.limit_hit()[0] == "pids"  # type: ignore[index]
    (d / "memory.current").write_text(str(300 << 20))
    (d / "memory.stat").write_text(f"anon 1\ninactive_file {100 << 20}\n")
    assert group.memory_bytes() == 200 << 20
    group._set_frozen(True)
    assert (d / "cgroup.freeze").read_text() == "1"


def test_cgroup_v1_is_chosen_when_the_unified_hierarchy_lacks_them(tmp_path: Path) -> None:
    """As on this machine: cgroup2 mounted with hugetlb only; v1 memory, pids, freezer."""
    proc = tmp_path / "proc"
    proc.mkdir()
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    lines, cgroup = [], ["0::/"]
    for i, c in enumerate(("memory", "pids", "freezer")):
        (tmp_path / c).mkdir()
        lines.append(f"{40 + i} 31 0:{40 + i} / {tmp_path / c} rw,relatime - cgroup cgroup rw,{c}")
        cgroup.append(f"{i + 1}:{c}:/")
    lines.append(f"50 31 0:50 / {tmp_path / 'unified'} rw,relatime - cgroup2 cgroup2 rw")
    (proc / "mountinfo").write_text("\n".join(lines) + "\n")
    (proc / "cgroup").write_text("\n".join(cgroup) + "\n")
    groups = Cgroups.open("r2", proc=str(proc))
    assert groups.version == 1 and set(groups.parents) == {"memory", "pids", "freezer"}
    assert groups.parents["pids"] == str(tmp_path / "pids" / "cached" / "r2")
    (tmp_path / "proc" / "cgroup").write_text("0::/\n1:memory:/\n")
    with pytest.raises(CgroupsUnavailable, match="pids, freezer"):
        Cgroups.open("r3", proc=str(proc))
