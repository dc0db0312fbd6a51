"""Sandbox.spawn: a long-lived child with a stdin pipe and a stdout line stream."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cached.sandbox import Sandbox, SandboxSpec
from sbx_support import BASE_ENV, ListSink, processes_with, run

# Answers each stdin line with "got <line>" on stdout and a note on stderr; exits at EOF.
ECHO = "while IFS= read -r l; do echo \"got $l\"; echo \"note $l\" >&2; done; echo bye"


def test_spawn_talks_over_pipes_and_exits_when_stdin_closes(sandbox: Sandbox, ws: Path, marker: str) -> None:
    sink = ListSink()

    async def scenario() -> tuple[list[str | None], int]:
        proc = await sandbox.spawn(SandboxSpec(argv=["sh", "-c", ECHO, marker], workspace=ws, env=BASE_ENV), sink)
        got = []
        for word in ("one", "two"):
            assert proc.stdin is not None
            proc.stdin.write(f"{word}\n".encode())
            await proc.stdin.drain()
            got.append(await asyncio.wait_for(proc.readline(), 10))
        assert proc.alive and len(proc.pids()) >= 2  # launcher, init, shell
        proc.stdin.close()
        got.append(await proc.readline())
        got.append(await proc.readline())
        return got, await asyncio.wait_for(proc.wait(), 10)

    got, code = run(scenario())
    assert got == ["got one", "got two", "bye", None]
    assert code == 0
    assert sink.of("stderr") == ["note one", "note two"]
    assert processes_with(marker) == []


def test_kill_ends_the_whole_tree(sandbox: Sandbox, ws: Path, marker: str) -> None:
    async def scenario() -> int:
        argv = ["sh", "-c", f"setsid sh -c 'trap \"\" TERM HUP; sleep 1000' bg-{marker} & cat", marker]
        proc = await sandbox.spawn(SandboxSpec(argv=argv, workspace=ws, env=BASE_ENV), ListSink())
        deadline = asyncio.get_running_loop().time() + 10
        while len(processes_with(marker)) < 2:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        code = await proc.kill()
        assert not proc.alive and await proc.readline() is None
        return code

    assert run(scenario()) == -9
    assert processes_with(marker) == []
