"""The cap on what a build writes (``--build-write-size``) through a real daemon: a build
writing past it, into its workspace or through node_modules' overlay, is RESOURCE_EXHAUSTED
naming the limit and its option, the next build of the app succeeds, workspaces beyond
``--workspaces-kept`` are dropped and rebuilt, and a daemon killed with workspaces mounted
leaves nothing in the way of the next one."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import grpc
import pytest

from cached.execution.workspaces import mounts_under
from cached_client import CachedError, Client
from support import WRITE_DIST, DaemonProcess, tiny_app

CAP = ["--build-write-size", "16MiB"]

WRITE_64_MIB = """
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
mkdirSync("dist", { recursive: true });
writeFileSync("dist/index.html", "<p>big</p>\\n");
mkdirSync("DIR", { recursive: true });
const chunk = Buffer.alloc(1 << 20, 120);
for (let i = 0; i < 64; i++) appendFileSync("DIR/big.bin", chunk);
"""

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the write cap is a tmpfs the daemon mounts: root only")


@pytest.mark.parametrize("where", ["dist", "node_modules/.junk"])
def test_a_build_writing_past_the_cap_is_resource_exhausted_naming_it_and_the_next_build_succeeds(make_daemon, where: str) -> None:  # type: ignore[no-untyped-def]
    d: DaemonProcess = make_daemon(args=CAP)
    with Client(d.address) as client:
        with pytest.raises(CachedError) as info:
            client.build(files=tiny_app(WRITE_64_MIB.replace("DIR", where)), app="hog", tenant="t1", timeout_s=60)
        assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED, info.value.details
        assert "build write limit of 16.0 MiB" in info.value.details and "--build-write-size" in info.value.details
        assert os.path.ismount(d.root / "work" / "t1" / "hog")
        again = client.build(files=tiny_app(WRITE_DIST), app="hog", tenant="t1")
        other = client.build(files=tiny_app(WRITE_DIST, extra={"src/other.txt": b"x"}), app="other", tenant="t1")
    assert again.cache == "miss" and [o.path for o in again.outputs] == ["index.html"]
    assert [o.path for o in other.outputs] == ["index.html"]
    assert d.proc is not None and d.proc.poll() is None
    assert not any((d.root / "scratch").iterdir()), "the overlay dirs live on the app's mount, not in scratch/"


def test_a_build_under_the_cap_is_not_bothered_and_without_a_cap_workspaces_are_plain(make_daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    eight = WRITE_64_MIB.replace("DIR", "dist").replace("i < 64", "i < 8")
    d: DaemonProcess = make_daemon(args=CAP)
    with Client(d.address) as client:
        result = client.build(files=tiny_app(eight), app="fits", tenant="t1")
    assert sorted(o.path for o in result.outputs) == ["big.bin", "index.html"]
    d.stop()
    assert mounts_under(d.root / "work") == [], "a stopping daemon unmounts its workspaces"
    plain: DaemonProcess = make_daemon(tmp_path / "plain", args=["--build-write-size", "0"])
    with Client(plain.address) as client:
        result = client.build(files=tiny_app(WRITE_64_MIB.replace("DIR", "dist")), app="big", tenant="t1")
    assert sorted(o.path for o in result.outputs) == ["big.bin", "index.html"]
    assert not os.path.ismount(plain.root / "work" / "t1" / "big") and (plain.root / "work" / "t1" / "big" / "ws").is_dir()


def test_workspaces_beyond_the_kept_count_are_dropped_and_rewritten_by_their_next_build(make_daemon) -> None:  # type: ignore[no-untyped-def]
    d: DaemonProcess = make_daemon(args=[*CAP, "--workspaces-kept", "1"])
    work = d.root / "work" / "t1"
    with Client(d.address) as client:
        client.build(files=tiny_app(WRITE_DIST), app="a", tenant="t1")
        assert os.path.ismount(work / "a")
        client.build(files=tiny_app(WRITE_DIST, extra={"src/b.txt": b"b"}), app="b", tenant="t1")  # not the same action: a build
        assert os.path.ismount(work / "b") and not os.path.ismount(work / "a")
        again = client.build(files=tiny_app(WRITE_DIST, extra={"src/new.txt": b"new"}), app="a", tenant="t1")
    assert again.cache == "miss" and [o.path for o in again.outputs] == ["index.html"]
    assert os.path.ismount(work / "a") and not os.path.ismount(work / "b")
    assert (work / "a" / "ws" / "src" / "new.txt").read_bytes() == b"new"


def test_a_daemon_killed_with_workspaces_mounted_leaves_nothing_in_the_way_of_the_next(make_daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "root"
    d: DaemonProcess = make_daemon(root, args=CAP)
    with Client(d.address) as client:
        client.build(files=tiny_app(WRITE_DIST), app="a", tenant="t1")
    assert mounts_under(root / "work") == [str(root.resolve() / "work" / "t1" / "a")]
    assert d.proc is not None
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait()
    assert mounts_under(root / "work"), "the killed daemon's workspace should still be mounted: the check would prove nothing"
    again: DaemonProcess = make_daemon(root, args=CAP)
    assert mounts_under(root / "work") == [], "the next daemon detaches what the earlier one left"
    with Client(again.address) as client:
        same = client.build(files=tiny_app(WRITE_DIST, extra={"src/x.txt": b"x"}), app="a", tenant="t1")
        with pytest.raises(CachedError) as info:
            client.build(files=tiny_app(WRITE_64_MIB.replace("DIR", "dist")), app="b", tenant="t1", timeout_s=60)
    assert [o.path for o in same.outputs] == ["index.html"]
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    again.stop()
    assert mounts_under(root / "work") == []


KEEP_VITE_CACHE = """
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
const marker = "node_modules/.vite/marker.txt";
const before = existsSync(marker) ? readFileSync(marker, "utf8") : "none";
mkdirSync("node_modules/.vite", { recursive: true });
writeFileSync(marker, "from " + readFileSync("src/n.txt", "utf8"));
mkdirSync("dist", { recursive: true });
writeFileSync("dist/index.html", before);
"""


def test_the_vite_cache_still_goes_from_one_build_to_the_next_from_the_capped_mount(make_daemon) -> None:  # type: ignore[no-untyped-def]
    d: DaemonProcess = make_daemon(args=CAP)
    with Client(d.address) as client:
        first = client.build(files=tiny_app(KEEP_VITE_CACHE, extra={"src/n.txt": b"one"}), app="v", tenant="t1")
        second = client.build(files=tiny_app(KEEP_VITE_CACHE, extra={"src/n.txt": b"two"}), app="v", tenant="t1")
        assert client.read_blob("t1", first.outputs[0]) == b"none"
        assert client.read_blob("t1", second.outputs[0]) == b"from one"


def test_with_the_sandbox_off_the_cap_is_not_enforced_and_one_line_says_so(make_daemon) -> None:  # type: ignore[no-untyped-def]
    d: DaemonProcess = make_daemon(args=[*CAP, "--sandbox", "off"])
    with Client(d.address) as client:
        result = client.build(files=tiny_app(WRITE_DIST), app="plain", tenant="t1")
    assert [o.path for o in result.outputs] == ["index.html"]
    assert not os.path.ismount(d.root / "work" / "t1" / "plain")
    assert d.log().count("build write limit (--build-write-size) is not enforced: the sandbox is off") == 1


def test_sources_that_do_not_fit_under_the_cap_are_resource_exhausted_before_the_build(make_daemon) -> None:  # type: ignore[no-untyped-def]
    d: DaemonProcess = make_daemon(args=CAP)
    big = {f"public/blob{i}.bin": bytes([i]) * (900 << 10) for i in range(20)}  # 18 MiB of sources
    with Client(d.address) as client:
        with pytest.raises(CachedError) as info:
            client.build(files=tiny_app(WRITE_DIST, extra=big), app="huge", tenant="t1", timeout_s=60)
        assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED, info.value.details
        assert "--build-write-size" in info.value.details
        ok = client.build(files=tiny_app(WRITE_DIST), app="huge", tenant="t1")
    assert [o.path for o in ok.outputs] == ["index.html"]
