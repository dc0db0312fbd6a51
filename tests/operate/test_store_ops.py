"""Purge, garbage collection and verify through the daemon, while builds run and after."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from cached_client import BuildResult, Client
from cached.v1 import tree_pb2
from operate_support import PAUSE, SHORT, run_cli, wait_for
from support import WRITE_DIST, DaemonProcess, tiny_app

BIG = """
import { mkdirSync, writeFileSync, readFileSync } from "node:fs";
const mark = readFileSync("src/mark.txt", "utf8");
mkdirSync("dist", { recursive: true });
writeFileSync("dist/index.html", mark.repeat(Math.ceil(30000 / mark.length)));
"""

SLOW_READS_DEPS = """
import { mkdirSync, writeFileSync, readFileSync } from "node:fs";
console.log("CACHED-TEST-SLEEPING");
await new Promise((r) => setTimeout(r, 4000));
const pkg = JSON.parse(readFileSync("node_modules/is-number/package.json", "utf8"));
mkdirSync("dist", { recursive: true });
writeFileSync("dist/index.html", "is-number " + pkg.version + "\\n");
writeFileSync("dist/source.txt", readFileSync("node_modules/is-number/index.js"));
"""


def big_app(mark: str) -> dict[str, bytes]:
    return tiny_app(BIG, extra={"src/mark.txt": mark.encode()})


def blob(client: Client, tenant: str, result: BuildResult, path: str) -> bytes:
    o = next(o for o in result.outputs if o.path == path)
    return client.read_blob(tenant, tree_pb2.Digest(hash=o.hash, size=o.size, function=tree_pb2.BLAKE3))


def footprint(d: DaemonProcess) -> tuple[int, int, dict[str, int]]:
    with Client(d.address) as client:
        s = client.stats_response()
    return s.blobs, s.bytes, dict(s.entries)


def test_a_flipped_byte_is_found_by_verify_and_rebuilt_clean(short_daemon: DaemonProcess) -> None:
    files = tiny_app(WRITE_DIST, extra={"src/v.txt": b"verify me"})
    with Client(short_daemon.address) as client:
        built = client.build(files=files, app="flip", tenant="vf")
        good = blob(client, "vf", built, "index.html")
        h = next(o for o in built.outputs if o.path == "index.html").hash
        with open(short_daemon.root / "cas" / h[:2] / h, "r+b") as f:
            f.seek(1)
            f.write(b"X")  # "<h1>" becomes "<X1>": same size, wrong bytes
        found = run_cli("verify", "--server", short_daemon.address)
        assert found.returncode == 1 and f"cas/{h[:2]}/{h}" in found.stdout, found.stdout
        repaired = run_cli("verify", "--repair", "--server", short_daemon.address)
        assert repaired.returncode == 1 and "repaired: 1 quarantined" in repaired.stdout, repaired.stdout
        again = client.build(files=files, app="flip", tenant="vf")
        assert again.cache == "miss" and again.reason == "corrupt"
        assert blob(client, "vf", again, "index.html") == good == b"<h1>hello</h1>\n"
        hit = client.build(files=files, app="flip", tenant="vf")
        assert hit.cache == "hit" and blob(client, "vf", hit, "index.html") == good
        assert client.verify().ok
    assert list((short_daemon.root / "quarantine").iterdir())


def test_purge_all_and_gc_to_zero_during_a_running_build_never_fail_it(short_daemon: DaemonProcess) -> None:
    package = {"name": "inflight", "version": "1.0.0", "private": True, "scripts": {"build": "node build.mjs"}, "dependencies": {"is-number": "7.0.0"}}
    lock = {"name": "inflight", "version": "1.0.0", "lockfileVersion": 3, "requires": True, "packages": {
        "": {"name": "inflight", "version": "1.0.0", "dependencies": {"is-number": "7.0.0"}},
        "node_modules/is-number": {"version": "7.0.0", "license": "MIT", "engines": {"node": ">=0.12.0"}},
    }}
    files = {"package.json": json.dumps(package).encode(), "package-lock.json": json.dumps(lock).encode(), "build.mjs": SLOW_READS_DEPS.encode()}
    sleeping = threading.Event()
    results: list[object] = []

    def on_event(event) -> None:  # type: ignore[no-untyped-def]
        if event.HasField("log") and "CACHED-TEST-SLEEPING" in event.log.line:
            sleeping.set()

    def build() -> None:
        try:
            with Client(short_daemon.address) as c:
                results.append(c.build(files=files, app="inflight", tenant="fl", on_event=on_event))
        except BaseException as e:  # noqa: BLE001
            results.append(e)

    thread = threading.Thread(target=build)
    thread.start()
    assert sleeping.wait(180), results
    time.sleep(PAUSE)  # node_modules is now older than the grace: only the build's own lease keeps it
    with Client(short_daemon.address) as admin:
        purged = admin.purge(all=True)
        collected = admin.collect_garbage(0)
        assert thread.is_alive(), "the build ended before purge and gc ran: this test proved nothing"
    assert purged.by_kind.get("deps", 0) >= 1 and collected.bytes_after < purged.bytes_after + 1
    thread.join(180)
    (result,) = results
    assert isinstance(result, BuildResult), result
    with Client(short_daemon.address) as client:
        assert blob(client, "fl", result, "index.html") == b"is-number 7.0.0\n"
        assert b"module.exports" in blob(client, "fl", result, "source.txt")


def test_gc_to_a_cap_ends_under_it_and_the_most_recent_app_still_hits(short_daemon: DaemonProcess) -> None:
    with Client(short_daemon.address) as client:
        time.sleep(PAUSE)
        client.purge(all=True)
        assert footprint(short_daemon)[:2] == (0, 0)
        client.build(files=big_app("b-first "), app="b", tenant="gc")
        client.build(files=big_app("c-only "), app="c", tenant="gc")
        client.build(files=big_app("b-second "), app="b", tenant="gc")
        a = client.build(files=big_app("a-latest "), app="a", tenant="gc")
        assert client.build(files=big_app("a-latest "), app="a", tenant="gc").cache == "hit"
        time.sleep(PAUSE)  # the leases of those builds run out
        before = footprint(short_daemon)
        assert before[1] > 4 * 30000
        dry = run_cli("gc", "--max-size", "50KB", "--dry-run", "--json", "--server", short_daemon.address)
        assert dry.returncode == 0 and json.loads(dry.stdout)["roots_evicted"] >= 3
        assert footprint(short_daemon) == before
        done = run_cli("gc", "--max-size", "50KB", "--server", short_daemon.address)
        assert done.returncode == 0, done.stderr
        blobs, size, entries = footprint(short_daemon)
        assert size <= 50_000 and entries.get("actions") == 1
        hit = client.build(files=big_app("a-latest "), app="a", tenant="gc")
        assert hit.cache == "hit" and blob(client, "gc", hit, "index.html") == blob(client, "gc", a, "index.html")
        back = client.build(files=big_app("b-first "), app="b", tenant="gc")  # b's last build was b-second
        assert (back.cache, back.reason) == ("miss", "evicted")
        assert client.stats_response().evictions >= 3


def test_purge_by_app_keeps_other_apps_hits_purge_all_empties_and_dry_runs_change_nothing(short_daemon: DaemonProcess) -> None:
    shared = tiny_app(WRITE_DIST, extra={"src/p.txt": b"shared"})
    other = tiny_app(WRITE_DIST, extra={"src/p.txt": b"other"})
    with Client(short_daemon.address) as client:
        assert client.build(files=shared, app="a", tenant="pg").cache == "miss"
        assert client.build(files=shared, app="b", tenant="pg").cache == "hit"  # same tenant, same inputs: one action
        client.build(files=other, app="c", tenant="pg")
        before = footprint(short_daemon)
        dry = run_cli("purge", "--app", "pg/a", "--dry-run", "--server", short_daemon.address)
        assert dry.returncode == 0 and "would hide 1 entries" in dry.stdout, dry.stdout
        assert footprint(short_daemon) == before and client.build(files=shared, app="a", tenant="pg").cache == "hit"
        assert run_cli("purge", "--app", "pg/a", "--server", short_daemon.address).returncode == 0
        purged = client.build(files=shared, app="a", tenant="pg")
        assert (purged.cache, purged.reason) == ("miss", "purged")
        assert client.build(files=shared, app="b", tenant="pg").cache == "hit"
        assert client.build(files=other, app="c", tenant="pg").cache == "hit"

        before = footprint(short_daemon)
        dry = run_cli("purge", "--all", "--dry-run", "--json", "--server", short_daemon.address)
        assert dry.returncode == 0 and json.loads(dry.stdout)["entries"] >= 2, dry.stdout
        assert client.purge(tenant="pg", dry_run=True).entries >= 2 and client.purge(older_than_s=1, dry_run=True).dry_run
        assert footprint(short_daemon) == before
        assert client.build(files=other, app="c", tenant="pg").cache == "hit"
        bad = run_cli("purge", "--older-than", "7 days", "--server", short_daemon.address)
        assert bad.returncode == 2 and "age" in bad.stderr

        time.sleep(PAUSE)  # the last hits' leases run out
        done = run_cli("purge", "--all", "--server", short_daemon.address)
        assert done.returncode == 0 and "removed" in done.stdout, done.stdout
        blobs, size, entries = footprint(short_daemon)
        assert (blobs, size, sum(entries.values())) == (0, 0, 0)
        again = client.build(files=other, app="c", tenant="pg")
        assert (again.cache, again.reason) == ("miss", "purged")


@pytest.fixture
def capped_daemon(make_daemon) -> Iterator[DaemonProcess]:  # type: ignore[no-untyped-def]
    yield make_daemon(args=[*SHORT, "--max-size", "70KB", "--gc-interval", "0.3"])


def test_the_daemon_collects_by_itself_when_the_cap_is_crossed(capped_daemon: DaemonProcess) -> None:
    with Client(capped_daemon.address) as client:
        for mark in ("one ", "two ", "three ", "four "):
            client.build(files=big_app(mark), app=mark.strip(), tenant="auto")
        under = wait_for(lambda: client.stats_response().bytes <= 70_000, timeout=30)
        s = client.stats_response()
        assert under and s.evictions >= 1, s
        assert client.build(files=big_app("four "), app="four", tenant="auto").cache == "hit"
    assert '"trigger": "auto"' in capped_daemon.log()
