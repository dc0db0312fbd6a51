"""Output plumbing: order, return codes, the bounded tail, slow consumers, env."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from cached.sandbox import QueueSink, Sandbox, SandboxSpec
from cached.sandbox.ring import MAX_LINE_BYTES, LineSplitter
from sbx_support import BASE_ENV, ListSink, run


def test_lines_reach_sink_in_order_and_returncode_propagates(sandbox: Sandbox, ws: Path, sink: ListSink) -> None:
    script = "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done; printf 'no newline'; exit 3"
    result = run(sandbox.run(SandboxSpec(argv=["sh", "-c", script], workspace=ws, env=BASE_ENV), sink))
    assert result.returncode == 3
    assert not result.timed_out
    assert sink.of("stdout") == ["out1", "out2", "out3", "out4", "out5", "no newline"]
    assert sink.of("stderr") == ["err1", "err2", "err3", "err4", "err5"]
    assert sorted(result.tail) == sorted(t for _s, t in sink.lines)


def test_signal_death_is_a_negative_returncode(sandbox: Sandbox, ws: Path, sink: ListSink) -> None:
    result = run(sandbox.run(SandboxSpec(argv=["sh", "-c", "kill -SEGV $$"], workspace=ws, env=BASE_ENV), sink))
    assert result.returncode == -11


def test_missing_command_is_127_with_a_message(sandbox: Sandbox, ws: Path, sink: ListSink) -> None:
    result = run(sandbox.run(SandboxSpec(argv=["no-such-tool-xyz"], workspace=ws, env=BASE_ENV), sink))
    assert result.returncode == 127
    assert "no-such-tool-xyz" in result.tail[-1]


def test_100k_lines_with_a_slow_consumer_do_not_stall(sandbox: Sandbox, ws: Path) -> None:
    """The consumer handles ~100 lines/s; the child must still finish at
    full speed, the sink dropping old lines and the tail staying bounded."""
    queue = QueueSink(max_lines=1000)
    consumed: list[str] = []

    async def consume() -> None:
        async for _stream, text in queue:
            consumed.append(text)
            await asyncio.sleep(0.01)

    async def scenario():
        consumer = asyncio.create_task(consume())
        spec = SandboxSpec(argv=["seq", "1", "100000"], workspace=ws, env=BASE_ENV, timeout=20)
        result = await sandbox.run(spec, queue)
        queue.close()
        consumer.cancel()
        return result

    result = run(scenario())
    assert result.returncode == 0 and not result.timed_out
    assert result.duration_s < 15
    assert len(result.tail) == 400
    assert result.tail[-1] == "100000" and result.tail[0] == "99601"
    assert queue.dropped > 90_000
    assert len(consumed) < 10_000


def test_tail_length_is_configurable(capabilities, ws: Path, sink: ListSink) -> None:
    if not capabilities.namespaces:
        pytest.skip(capabilities.detail)
    small = Sandbox("namespaces", tail_lines=3, capabilities=capabilities)
    result = run(small.run(SandboxSpec(argv=["seq", "1", "10"], workspace=ws, env=BASE_ENV), sink))
    assert result.tail == ["8", "9", "10"]
    assert len(sink.lines) == 10


def test_child_sees_exactly_spec_env(sandbox: Sandbox, ws: Path, sink: ListSink, monkeypatch) -> None:
    monkeypatch.setenv("CACHED_DAEMON_CANARY", "daemon-secret-1234")
    env = {**BASE_ENV, "HOME": str(ws), "VITE_API": "https://x.example", "WEIRD": "a b=c"}
    result = run(sandbox.run(SandboxSpec(argv=["env"], workspace=ws, env=env), sink))
    assert result.returncode == 0
    assert sorted(sink.of("stdout")) == sorted(f"{k}={v}" for k, v in env.items())
    assert "daemon-secret-1234" not in "\n".join(result.tail)


def test_off_mode_runs_unisolated_with_exact_env(ws: Path, tmp_path: Path, sink: ListSink, monkeypatch) -> None:
    """Documented as unsafe: same user as the daemon, whole filesystem, but
    still only spec.env and the workspace as cwd."""
    monkeypatch.setenv("CACHED_DAEMON_CANARY", "daemon-secret-1234")
    hidden = tmp_path / "store"
    hidden.mkdir()
    (hidden / "canary").write_text("store-canary\n")
    env = {**BASE_ENV, "ONLY": "this"}
    script = f"id -u; pwd; cat {hidden}/canary; env | sort"
    spec = SandboxSpec(argv=["sh", "-c", script], workspace=ws, env=env, hide=[hidden])
    result = run(Sandbox("off").run(spec, sink))
    out = sink.of("stdout")
    assert result.returncode == 0
    assert out[0] == str(os.geteuid())
    assert out[1] == str(ws)
    assert out[2] == "store-canary"  # hide is NOT honoured: no isolation
    assert "ONLY=this" in out and not any("CACHED_DAEMON_CANARY" in line for line in out)


def test_off_mode_timeout_kills_group(ws: Path, sink: ListSink, marker: str) -> None:
    from sbx_support import processes_with

    script = f"sh -c 'sleep 1000; true' {marker} & sleep 1000"
    spec = SandboxSpec(argv=["sh", "-c", script], workspace=ws, env=BASE_ENV, timeout=0.5)
    result = run(Sandbox("off").run(spec, sink))
    assert result.timed_out
    assert processes_with(marker) == []


@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        ([b"a\nb", b"c\n", b"d"], ["a", "bc", "d"]),
        ([b"crlf\r\n", b"x\r", b"\n"], ["crlf", "x"]),
        ([b"\xff\xfeok\n"], ["\ufffd\ufffdok"]),
        ([b"\n\n"], ["", ""]),
    ],
)
def test_line_splitter(chunks: list[bytes], lines: list[str]) -> None:
    splitter = LineSplitter()
    out: list[str] = []
    for chunk in chunks:
        out += splitter.feed(chunk)
    out += splitter.close()
    assert out == lines


def test_line_splitter_bounds_an_endless_line() -> None:
    splitter = LineSplitter()
    out: list[str] = []
    for _ in range(100):
        out += splitter.feed(b"x" * 10_000)
    out += splitter.feed(b"tail\nnext\n")
    assert len(out) == 2
    assert out[0].startswith("x" * MAX_LINE_BYTES) and out[0].endswith("[line truncated]")
    assert out[1] == "next"


def test_a_failing_sink_does_not_stall_the_child(sandbox: Sandbox, ws: Path) -> None:
    class Broken:
        calls = 0

        def line(self, stream: str, text: str) -> None:
            Broken.calls += 1
            raise RuntimeError("consumer bug")

    spec = SandboxSpec(argv=["seq", "1", "5000"], workspace=ws, env=BASE_ENV, timeout=20)
    result = run(sandbox.run(spec, Broken()))
    assert result.returncode == 0 and result.tail[-1] == "5000"
    assert Broken.calls == 1


def test_off_mode_refuses_an_overlay(ws: Path, tmp_path: Path, sink: ListSink) -> None:
    from cached.sandbox import Overlay, SandboxUnavailable

    lower = tmp_path / "lower"
    lower.mkdir()
    ov = Overlay(lower, tmp_path / "u", tmp_path / "w", ws / "node_modules")
    with pytest.raises(SandboxUnavailable, match="overlay"):
        run(Sandbox("off").run(SandboxSpec(argv=["true"], workspace=ws, env=BASE_ENV, overlay=ov), sink))
