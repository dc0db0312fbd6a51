"""Start, timeout, cancellation: nothing outlives a run."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from cached.sandbox import Sandbox, SandboxCapabilities, SandboxSpec, SandboxUnavailable
from sbx_support import BASE_ENV, ListSink, processes_with, run


def tree_script(marker: str) -> list[str]:
    """A background grandchild in its own session that ignores TERM/HUP, plus
    a foreground child; every process carries the marker in its argv."""
    return [
        "sh", "-c",
        f"setsid sh -c 'trap \"\" TERM HUP INT; sleep 1000; true' bg-{marker} &"
        f" sh -c 'trap \"\" TERM; sleep 1000; true' fg-{marker}",
        f"top-{marker}",
    ]


async def wait_for_processes(marker: str, count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while len(processes_with(marker)) < count:
        assert time.monotonic() < deadline, "the process tree never started"
        await asyncio.sleep(0.02)


def test_timeout_kills_the_whole_tree(sandbox: Sandbox, ws: Path, sink: ListSink, marker: str) -> None:
    async def scenario():
        spec = SandboxSpec(argv=tree_script(marker), workspace=ws, env=BASE_ENV, timeout=1.0)
        task = asyncio.create_task(sandbox.run(spec, sink))
        await wait_for_processes(marker, 3)
        return await task

    result = run(scenario())
    assert result.timed_out
    assert result.returncode == -9
    assert 1.0 <= result.duration_s < 8
    assert processes_with(marker) == []


def test_cancel_kills_the_whole_tree_and_reraises(sandbox: Sandbox, ws: Path, sink: ListSink, marker: str) -> None:
    async def scenario() -> None:
        spec = SandboxSpec(argv=tree_script(marker), workspace=ws, env=BASE_ENV)
        task = asyncio.create_task(sandbox.run(spec, sink))
        await wait_for_processes(marker, 3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert processes_with(marker) == []  # already gone when run() re-raised

    run(scenario())
    assert processes_with(marker) == []


def test_leftovers_die_when_the_command_exits(sandbox: Sandbox, ws: Path, sink: ListSink, marker: str) -> None:
    """A successful command's daemonised grandchild dies with the namespace."""
    script = f"setsid sh -c 'trap \"\" TERM HUP; sleep 1000; true' bg-{marker} & echo started"
    result = run(sandbox.run(SandboxSpec(argv=["sh", "-c", script], workspace=ws, env=BASE_ENV, timeout=20), sink))
    assert result.returncode == 0 and result.tail == ["started"]
    assert result.duration_s < 5  # the grandchild holding stdout does not keep us waiting
    assert processes_with(marker) == []


def test_real_node_runs_inside(sandbox: Sandbox, ws: Path, sink: ListSink) -> None:
    host = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    spec = SandboxSpec(argv=["node", "-e", "console.log(process.version)"], workspace=ws, env=BASE_ENV, timeout=20)
    result = run(sandbox.run(spec, sink))
    assert result.returncode == 0, result.tail
    assert sink.of("stdout") == [host]


def test_auto_without_namespaces_refuses_with_a_clear_message() -> None:
    caps = SandboxCapabilities(False, False, False, True, "unshare: unshare failed: Operation not permitted")
    with pytest.raises(SandboxUnavailable, match=r"sandbox = off") as info:
        Sandbox("auto", capabilities=caps)
    assert "Operation not permitted" in str(info.value)
    with pytest.raises(SandboxUnavailable):
        Sandbox("namespaces", capabilities=caps)
    with pytest.raises(ValueError):
        Sandbox("bogus")


def test_probe_reports_this_machine(capabilities: SandboxCapabilities) -> None:
    # CI and this machine run as root with namespaces and overlayfs.
    assert capabilities.namespaces and capabilities.overlay and capabilities.root, capabilities.detail


def test_invalid_specs_are_refused_before_starting(sandbox: Sandbox, ws: Path, sink: ListSink) -> None:
    with pytest.raises(ValueError):
        run(sandbox.run(SandboxSpec(argv=[], workspace=ws, env=BASE_ENV), sink))
    with pytest.raises(ValueError):
        run(sandbox.run(SandboxSpec(argv=["true"], workspace=Path("relative"), env=BASE_ENV), sink))
    with pytest.raises(ValueError):
        run(sandbox.run(SandboxSpec(argv=["true"], workspace=ws, env={"A=B": "x"}), sink))
    assert sink.lines == []


@pytest.mark.parametrize("delay", [0, 0.005, 0.02, 0.05])
def test_cancel_at_any_point_of_start_up_leaves_nothing(
    sandbox: Sandbox, ws: Path, sink: ListSink, marker: str, delay: float
) -> None:
    async def scenario() -> None:
        spec = SandboxSpec(argv=tree_script(marker), workspace=ws, env=BASE_ENV)
        task = asyncio.create_task(sandbox.run(spec, sink))
        await asyncio.sleep(delay)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())
    deadline = time.monotonic() + 2
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.02)  # only a launcher killed mid-spawn may need its pdeathsig delivered
    assert processes_with(marker) == []


def test_concurrent_runs_are_independent(sandbox: Sandbox, tmp_path: Path) -> None:
    async def one(i: int) -> tuple[int, list[str]]:
        ws = tmp_path / f"ws{i}"
        ws.mkdir()
        sink = ListSink()
        spec = SandboxSpec(argv=["sh", "-c", f"echo {i} > mine; sleep 0.2; cat mine; ls"], workspace=ws, env=BASE_ENV)
        result = await sandbox.run(spec, sink)
        return result.returncode, sink.of("stdout")

    async def scenario():
        return await asyncio.gather(*(one(i) for i in range(6)))

    for i, (rc, out) in enumerate(run(scenario())):
        assert rc == 0 and out == [str(i), "mine"]
