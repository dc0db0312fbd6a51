"""The Python client against a real daemon: live events, cancellation, uploads, typed results and errors."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
import uuid
from typing import Any

import grpc
import pytest

from cached.v1 import cached_pb2, tree_pb2
from cached_client import (
    AsyncClient, BuildFailed, BuildResult, CachedError, Cancelled, Client, Digest, InvalidRequest, Metrics, NotFound,
    OutputFile, Stats, digest_of,
)
from support import WRITE_DIST, DaemonProcess, tiny_app

TICKS = """
console.log("tick-1");
await new Promise((r) => setTimeout(r, 3000));
console.log("tick-2");
""" + WRITE_DIST


def _lines(received: list[tuple[str, float]]) -> dict[str, float]:
    return {line: at for line, at in received}


def test_events_arrive_while_the_build_runs(daemon: DaemonProcess) -> None:
    """tick-2 is logged 3 s after tick-1: a client that got both at once would have been handed a buffered stream."""
    received: list[tuple[str, float]] = []
    done_when_tick1: list[bool] = []
    files = tiny_app(TICKS, extra={"src/id.txt": uuid.uuid4().hex.encode()})
    with Client(daemon.address) as client, client.start_build(files=files, app="live", tenant="t1") as call:
        for event in call:
            if event.WhichOneof("event") == "log":
                received.append((event.log.line, time.monotonic()))
                if event.log.line == "tick-1":
                    done_when_tick1.append(call.done())
        result = call.result()
        ended = time.monotonic()
    at = _lines(received)
    assert result.cache == "miss"
    assert done_when_tick1 == [False]
    assert at["tick-2"] - at["tick-1"] >= 2.0
    assert ended - at["tick-1"] >= 2.0


def test_async_client_delivers_events_as_they_arrive(daemon: DaemonProcess) -> None:
    files = tiny_app(TICKS, extra={"src/id.txt": uuid.uuid4().hex.encode()})
    received: list[tuple[str, float]] = []

    def on_event(event: cached_pb2.BuildEvent) -> None:
        if event.WhichOneof("event") == "log":
            received.append((event.log.line, time.monotonic()))

    async def run() -> BuildResult:
        async with AsyncClient(daemon.address) as client:
            return await client.build(files=files, app="live-async", tenant="t1", on_event=on_event)

    result = asyncio.run(run())
    at = _lines(received)
    assert result.cache == "miss" and result.outputs
    assert at["tick-2"] - at["tick-1"] >= 2.0


def _slow_app(marker: str) -> dict[str, bytes]:
    """A build that never ends; the marker is in the command lines of node and of a detached grandchild."""
    script = (
        "import { spawn } from 'node:child_process';\n"
        "spawn('sh', ['-c', 'sleep 300; : ' + process.argv[2]], { detached: true, stdio: 'ignore' });\n"
        "console.log('started');\n"
        "setTimeout(() => {}, 300000);\n"
    )
    return tiny_app(script, script=f"node build.mjs {marker}")


def _running(marker: str) -> list[str]:
    return subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()


def _wait_gone(marker: str, timeout: float = 30.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := _running(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_cancelling_the_call_kills_the_build(daemon: DaemonProcess) -> None:
    marker = f"cached-cancel-{uuid.uuid4().hex[:12]}"
    with Client(daemon.address) as client:
        call = client.start_build(files=_slow_app(marker), app="cancel", tenant="t1")
        with pytest.raises(Cancelled):
            for event in call:
                if event.WhichOneof("event") == "log" and event.log.line == "started":
                    assert _running(marker), "the build's process should be running before the cancel"
                    threading.Thread(target=call.cancel).start()  # from another thread, as a UI would
        assert _wait_gone(marker) == []
        # The daemon is still healthy and builds the next request.
        assert client.build(files=tiny_app(WRITE_DIST, extra={"src/after.txt": marker.encode()}), app="cancel", tenant="t1").outputs


def test_an_exception_in_on_event_cancels_the_build(daemon: DaemonProcess) -> None:
    marker = f"cached-cancel-{uuid.uuid4().hex[:12]}"

    class Stop(Exception):
        pass

    def on_event(event: cached_pb2.BuildEvent) -> None:
        if event.WhichOneof("event") == "log" and event.log.line == "started":
            raise Stop

    with Client(daemon.address) as client, pytest.raises(Stop):
        client.build(files=_slow_app(marker), app="cancel-cb", tenant="t1", on_event=on_event)
    assert _wait_gone(marker) == []


def test_cancelling_the_asyncio_task_kills_the_build(daemon: DaemonProcess) -> None:
    marker = f"cached-cancel-{uuid.uuid4().hex[:12]}"

    async def run() -> None:
        started = asyncio.Event()

        def on_event(event: cached_pb2.BuildEvent) -> None:
            if event.WhichOneof("event") == "log" and event.log.line == "started":
                started.set()

        async with AsyncClient(daemon.address) as client:
            task = asyncio.create_task(client.build(files=_slow_app(marker), app="cancel-async", tenant="t1", on_event=on_event))
            await asyncio.wait_for(started.wait(), 60)
            assert _running(marker)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(run())
    assert _wait_gone(marker) == []


class Recorder(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor, grpc.StreamUnaryClientInterceptor):
    """Records each call's method and the bytes it sent."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def intercept_unary_unary(self, continuation, details, request):  # type: ignore[no-untyped-def]
        self.calls.append((details.method, request.ByteSize()))
        return continuation(details, request)

    def intercept_unary_stream(self, continuation, details, request):  # type: ignore[no-untyped-def]
        self.calls.append((details.method, request.ByteSize()))
        return continuation(details, request)

    def intercept_stream_unary(self, continuation, details, request_iterator):  # type: ignore[no-untyped-def]
        entry = [details.method, 0]
        self.calls.append(entry)  # type: ignore[arg-type]

        def counted():  # type: ignore[no-untyped-def]
            for chunk in request_iterator:
                entry[1] += len(chunk.data)
                yield chunk
        return continuation(details, counted())

    def sent(self, method: str) -> list[int]:
        return [size for name, size in self.calls if name.endswith("/" + method)]


def test_upload_missing_sends_only_blobs_the_tenant_lacks(daemon: DaemonProcess) -> None:
    a, b, c = (uuid.uuid4().bytes * 1000 for _ in range(3))
    recorder = Recorder()
    with Client(daemon.address, interceptors=[recorder]) as client:
        assert sorted(d.hash for d in client.upload_missing("t1", [a, b])) == sorted(digest_of(x).hash for x in (a, b))
        assert recorder.sent("UploadBlobs") == [len(a) + len(b)]
        assert client.upload_missing("t1", [a, b, c]) == [Digest.from_proto(digest_of(c))]
        assert recorder.sent("UploadBlobs") == [len(a) + len(b), len(c)]
        assert client.upload_missing("t1", [a, b, c]) == []
        assert len(recorder.sent("UploadBlobs")) == 2
        # Answers are per tenant: another tenant must send the bytes itself.
        assert client.find_missing("t2", [digest_of(a)]) == [Digest.from_proto(digest_of(a))]
        assert client.read_blob("t1", digest_of(c)) == c


COPY_BIG = """
import { mkdirSync, copyFileSync, writeFileSync } from "node:fs";
mkdirSync("dist", { recursive: true });
copyFileSync("public/big.bin", "dist/big.bin");
writeFileSync("dist/index.html", "<h1>big</h1>\\n");
"""


def test_files_over_one_mib_go_through_upload_blobs_and_build(daemon: DaemonProcess) -> None:
    big = os.urandom((1 << 20) + 12345)
    files = tiny_app(COPY_BIG, extra={"public/big.bin": big})
    recorder = Recorder()
    with Client(daemon.address, interceptors=[recorder]) as client:
        result = client.build(files=files, app="big", tenant="t1")
        assert recorder.sent("UploadBlobs") == [len(big)]
        assert recorder.sent("Build")[0] < (1 << 20)  # the big file went by digest, not inline
        out = {o.path: o for o in result.outputs}
        assert out["big.bin"].hash == digest_of(big).hash and out["big.bin"].size == len(big)
        assert client.read_blob("t1", out["big.bin"]) == big
        again = client.build(files=files, app="big", tenant="t1")
        assert again.cache == "hit"
        assert len(recorder.sent("UploadBlobs")) == 1  # known now: not sent a second time


def test_results_are_typed(daemon: DaemonProcess) -> None:
    files = tiny_app(WRITE_DIST, extra={"src/typed.txt": uuid.uuid4().hex.encode()})
    with Client(daemon.address) as client:
        result = client.build(files=files, app="typed", tenant="t1")
        assert isinstance(result, BuildResult) and not result.hit
        assert isinstance(result.metrics, Metrics) and result.metrics.output_files == 1
        assert isinstance(result.outputs[0], OutputFile) and result.outputs[0].digest.startswith("blake3:")
        assert isinstance(result.output_tree, Digest) and isinstance(result.log_digest, Digest)
        decision = result.decision("action")
        assert decision is not None and (decision.result, decision.reason) == ("miss", "new_app")
        assert isinstance(client.read_blob("t1", result.log_digest), bytes)
        stats = client.stats()
        assert isinstance(stats, Stats) and any(a.app == "typed" for a in stats.app_stats)
        assert client.build(files=files, app="typed", tenant="t1").hit


def test_errors_are_typed_and_carry_status_and_message(daemon: DaemonProcess) -> None:
    with Client(daemon.address) as client:
        with pytest.raises(InvalidRequest) as bad:
            client.build(files=tiny_app(WRITE_DIST), app="Bad App", tenant="t1")
        assert bad.value.code == grpc.StatusCode.INVALID_ARGUMENT and "app" in bad.value.details

        broken = tiny_app(f"console.error('{uuid.uuid4().hex}: cannot resolve ./missing'); process.exit(2);")
        with pytest.raises(BuildFailed) as failed:
            client.build(files=broken, app="typed-broken", tenant="t1")
        assert failed.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert any("cannot resolve ./missing" in line for line in failed.value.log_tail)
        assert isinstance(failed.value, CachedError)

        with pytest.raises(NotFound) as missing:
            client.read_blob("t1", tree_pb2.Digest(hash="0" * 64, size=3, function=tree_pb2.BLAKE3))
        assert missing.value.code == grpc.StatusCode.NOT_FOUND


def test_async_errors_are_typed(daemon: DaemonProcess) -> None:
    async def run() -> Any:
        async with AsyncClient(daemon.address) as client:
            return await client.build(files=tiny_app("process.exit(1)"), app="typed-async", tenant="t1")

    with pytest.raises(BuildFailed):
        asyncio.run(run())


def test_async_purge_makes_the_next_build_miss_with_reason_purged(daemon: DaemonProcess) -> None:
    files = tiny_app(WRITE_DIST, extra={"src/purge.txt": uuid.uuid4().hex.encode()})

    async def run() -> tuple[BuildResult, Any, BuildResult, Stats]:
        async with AsyncClient(daemon.address) as client:
            first = await client.build(files=files, app="purge-me", tenant="t1")
            purged = await client.purge(app="t1/purge-me")
            again = await client.build(files=files, app="purge-me", tenant="t1")
            return first, purged, again, await client.stats()

    first, purged, again, stats = asyncio.run(run())
    assert first.cache == "miss" and purged.watermark_set
    assert (again.cache, again.decision("action").reason) == ("miss", "purged")  # type: ignore[union-attr]
    assert isinstance(stats.hit_rate, float) and stats.builds >= 2
