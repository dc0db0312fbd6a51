"""Several daemons, each with its own root, sharing one bucket (moto's S3 server on 127.0.0.1).

Daemon A holds the signing key and writes; the others only read, trusting
A's public key. Apps are tiny (a node script that copies a package's file),
their one package served by a registry on 127.0.0.1, so every test can tell
which daemon ran what, and whether anything came from the registry.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from egress_support import LocalRegistry
from remote_support import Keys, MotoS3, credentials_file

from cached.v1 import remote_pb2, tree_pb2
from cached_client import Client
from support import DaemonProcess, integrity, npm_tarball, sample, scrape, tiny_app

COPY = """
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
mkdirSync("dist", { recursive: true });
writeFileSync("dist/out.txt", readFileSync("node_modules/shared-dep/index.js", "utf8") + readFileSync("src.txt", "utf8"));
"""


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    reg = LocalRegistry()
    yield reg
    reg.close()


@pytest.fixture
def package(registry: LocalRegistry) -> tuple[str, bytes]:
    version = f"1.0.{uuid.uuid4().int % 10**8}"
    tarball = npm_tarball("shared-dep", version, {"index.js": f"shared-dep@{version}\n"})
    registry.publish("shared-dep", version, tarball)
    return version, tarball


def app(pkg: tuple[str, bytes], source: str = "one\n") -> dict[str, bytes]:
    files = tiny_app(COPY, extra={"src.txt": source.encode()})
    manifest, lock = json.loads(files["package.json"]), json.loads(files["package-lock.json"])
    manifest["dependencies"] = lock["packages"][""]["dependencies"] = {"shared-dep": pkg[0]}
    lock["packages"]["node_modules/shared-dep"] = {"version": pkg[0], "integrity": integrity(pkg[1])}
    files["package.json"], files["package-lock.json"] = json.dumps(manifest).encode(), json.dumps(lock).encode()
    return files


class Fleet:
    """Daemons on one bucket: ``writer()`` signs with A's key, ``reader()`` trusts it (or ``trusted`` keys)."""

    def __init__(self, tmp: Path, s3: MotoS3, bucket: str, registry: LocalRegistry, keys: Callable[[str], Keys]) -> None:
        self.tmp, self.s3, self.bucket, self.registry = tmp, s3, bucket, registry
        self.keys = keys("a")
        self.creds = credentials_file(tmp)
        self.started: list[DaemonProcess] = []

    def _start(self, name: str, extra: list[str]) -> DaemonProcess:
        args = ["--registry", self.registry.url, "--metrics-listen", "127.0.0.1:0", "--remote", f"s3://{self.bucket}/cache",
                "--remote-endpoint", self.s3.endpoint, "--remote-credentials-file", str(self.creds), *extra]
        (self.tmp / name).mkdir(exist_ok=True)
        d = DaemonProcess(self.tmp / name / "root", self.tmp / name / "npm-cache", args=args).start()
        self.started.append(d)
        return d

    def writer(self, name: str = "a", *extra: str) -> DaemonProcess:
        return self._start(name, ["--remote-signing-key", str(self.keys.private), *extra])

    def reader(self, name: str, trusted: Path | None = None) -> DaemonProcess:
        return self._start(name, ["--remote-trusted-keys", str(trusted or self.keys.public)])

    def objects(self) -> dict[str, bytes]:
        return self.s3.keys(self.bucket)

    def wait_for(self, prefix: str, timeout: float = 30.0) -> dict[str, bytes]:
        """The bucket's objects once one under ``prefix`` is there (A writes behind its builds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.objects()
            if any(k.startswith(prefix) for k in found):
                return found
            time.sleep(0.1)
        raise AssertionError(f"nothing under {prefix} in the bucket after {timeout} s")

    def stop(self) -> None:
        for d in self.started:
            if d.proc is not None and d.proc.poll() is None:
                d.stop()


@pytest.fixture
def fleet(tmp_path: Path, s3_server: MotoS3, bucket: str, registry: LocalRegistry, make_keys: Callable[[str], Keys]) -> Iterator[Fleet]:
    f = Fleet(tmp_path, s3_server, bucket, registry, make_keys)
    yield f
    f.stop()


def output(client: Client, tenant: str, result) -> bytes:  # type: ignore[no-untyped-def]
    o = next(o for o in result.outputs if o.path == "out.txt")
    return client.read_blob(tenant, tree_pb2.Digest(hash=o.hash, size=o.size, function=tree_pb2.BLAKE3))


def build_on_a(fleet: Fleet, files: dict[str, bytes], app_id: str = "shop") -> None:
    with Client(fleet.writer().address) as a:
        a.build(files=files, app=app_id, tenant="t1")
    fleet.wait_for("cache/ac/t1/")


def test_an_app_built_on_one_daemon_is_a_hit_on_another(fleet: Fleet, package: tuple[str, bytes]) -> None:
    files = app(package)
    with Client(fleet.writer().address) as a:
        built = a.build(files=files, app="shop", tenant="t1")
    fleet.wait_for("cache/ac/t1/")
    with Client(fleet.reader("b").address) as b:
        first = b.build(files=files, app="shop", tenant="t1")
        again = b.build(files=files, app="shop", tenant="t1")
        assert b.stats().processes_started == 0  # no node, no npm on B
        assert output(b, "t1", first) == f"shared-dep@{package[0]}\none\n".encode()
    assert first.cache == "hit" and first.decision("action").tier == "remote"
    assert [(o.path, o.hash) for o in first.outputs] == [(o.path, o.hash) for o in built.outputs]
    assert again.cache == "hit" and again.decision("action").tier == "local"


def test_a_new_app_on_known_dependencies_takes_its_packages_from_the_bucket(fleet: Fleet, package: tuple[str, bytes], registry: LocalRegistry) -> None:
    build_on_a(fleet, app(package))
    fleet.wait_for("cache/packages/")
    fetched_from_registry = len(registry.tarball_requests())
    with Client(fleet.reader("b").address) as b:
        result = b.build(files=app(package, "another app\n"), app="blog", tenant="t1")
        assert b.stats().processes_started == 1  # the build's node only: no npm
        assert output(b, "t1", result) == f"shared-dep@{package[0]}\nanother app\n".encode()
    assert len(registry.tarball_requests()) == fetched_from_registry  # nothing from the registry: the bucket had it
    assert result.metrics is not None and result.metrics.packages_fetched == 1 and result.metrics.package_bytes_downloaded == 0


def _tamper_action(fleet: Fleet, change: Callable[[remote_pb2.SignedRecord], None]) -> None:
    objects = fleet.objects()
    name = next(k for k in objects if k.startswith("cache/ac/t1/"))
    envelope = remote_pb2.SignedRecord.FromString(objects[name])
    change(envelope)
    fleet.s3.client().put_object(Bucket=fleet.bucket, Key=name, Body=envelope.SerializeToString())


def _changed_value(e: remote_pb2.SignedRecord) -> None:
    e.value = e.value.replace(b"t1", b"t2", 1) if b"t1" in e.value else e.value + b"\x00"


def _changed_signature(e: remote_pb2.SignedRecord) -> None:
    e.signature = bytes(64)


@pytest.mark.parametrize(("change", "reason"), [(_changed_value, "value_mismatch"), (_changed_signature, "bad_signature")])
def test_a_record_changed_in_the_bucket_is_rejected_and_counted(fleet: Fleet, package: tuple[str, bytes], change, reason: str) -> None:  # type: ignore[no-untyped-def]
    files = app(package)
    build_on_a(fleet, files)
    _tamper_action(fleet, change)
    b = fleet.reader("b")
    with Client(b.address) as client:
        result = client.build(files=files, app="shop", tenant="t1")
        counted = scrape(client.stats_response().metrics_address)
        assert output(client, "t1", result) == f"shared-dep@{package[0]}\none\n".encode()  # built here, correctly
    assert result.cache == "miss"
    assert sample(counted, "cached_remote_rejected_total", reason=reason) == 1


def test_a_record_signed_by_an_untrusted_key_is_rejected(fleet: Fleet, package: tuple[str, bytes], make_keys: Callable[[str], Keys]) -> None:
    files = app(package)
    build_on_a(fleet, files)
    stranger = make_keys("stranger")
    with Client(fleet.reader("b", trusted=stranger.public).address) as b:
        result = b.build(files=files, app="shop", tenant="t1")
        counted = scrape(b.stats_response().metrics_address)
    assert result.cache == "miss"
    assert sample(counted, "cached_remote_rejected_total", reason="unknown_key") >= 1


def test_a_blob_whose_body_does_not_match_its_digest_is_rejected(fleet: Fleet, package: tuple[str, bytes]) -> None:
    files = app(package)
    build_on_a(fleet, files)
    objects = fleet.objects()
    envelope = remote_pb2.SignedRecord.FromString(objects[next(k for k in objects if k.startswith("cache/ac/t1/"))])
    from cached.v1 import records_pb2

    out = next(f for f in records_pb2.ActionRecord.FromString(envelope.value).outputs.files if f.path == "out.txt")
    name = f"cache/cas/blake3/{out.digest.hash}"
    body = objects[name]
    fleet.s3.client().put_object(Bucket=fleet.bucket, Key=name, Body=bytes([body[0] ^ 1]) + body[1:])  # same size, other bytes
    with Client(fleet.reader("b").address) as b:
        result = b.build(files=files, app="shop", tenant="t1")
        counted = scrape(b.stats_response().metrics_address)
        assert output(b, "t1", result) == f"shared-dep@{package[0]}\none\n".encode()
    assert result.cache == "miss"
    assert sample(counted, "cached_remote_rejected_total", reason="digest_mismatch") == 1


def test_a_read_only_daemon_writes_nothing_to_the_bucket(fleet: Fleet, package: tuple[str, bytes]) -> None:
    build_on_a(fleet, app(package))
    before = fleet.objects()
    with Client(fleet.reader("b").address) as b:
        b.build(files=app(package, "built on b\n"), app="other", tenant="t2")
    time.sleep(1.0)  # a writer's queue would have drained by now
    assert fleet.objects() == before


def test_builds_go_on_while_the_bucket_is_down_and_writes_resume_after(fleet: Fleet, package: tuple[str, bytes]) -> None:
    a = fleet.writer("a", "--remote-breaker-cooldown", "1")
    with Client(a.address) as client:
        client.build(files=app(package, "first\n"), app="shop", tenant="t1")
        fleet.wait_for("cache/ac/t1/")
        fleet.s3.stop()
        try:
            for i in range(3):
                result = client.build(files=app(package, f"while down {i}\n"), app="shop", tenant="t1")
                assert output(client, "t1", result) == f"shared-dep@{package[0]}\nwhile down {i}\n".encode()
            counted = scrape(client.stats_response().metrics_address)
        finally:
            fleet.s3.start()
        assert sum(v for (name, _), v in counted.items() if name == "cached_remote_dropped_total") >= 1
        records_before = sum(1 for k in fleet.objects() if k.startswith("cache/ac/t1/"))
        time.sleep(1.5)  # past the breaker's cooldown
        client.build(files=app(package, "after\n"), app="shop", tenant="t1")
    deadline = time.monotonic() + 30
    while sum(1 for k in fleet.objects() if k.startswith("cache/ac/t1/")) <= records_before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sum(1 for k in fleet.objects() if k.startswith("cache/ac/t1/")) == records_before + 1


def test_a_tree_npm_installed_and_a_resolution_are_shared(fleet: Fleet, package: tuple[str, bytes]) -> None:
    """What the package store cannot lay out (a file: dependency: npm ci) and a lockfile npm resolved reach B whole."""
    from support import dev_tool_app

    unresolved = app(package, "resolve me\n")
    del unresolved["package-lock.json"]
    with Client(fleet.writer().address) as a:
        a.build(files=dev_tool_app(name="tool-app"), app="tool", tenant="t1")
        a.build(files=unresolved, app="unresolved", tenant="t1")
    fleet.wait_for("cache/deps/")
    fleet.wait_for("cache/resolutions/")
    with Client(fleet.reader("b").address) as b:
        tool = b.build(files=dev_tool_app(name="tool-app", extra={"index.html": b"<p>on b</p>\n"}), app="tool", tenant="t1")
        assert b.stats().processes_started == 1  # the build alone: the tree came installed
        resolved = b.build(files={**unresolved, "src.txt": b"resolved on b\n"}, app="unresolved", tenant="t1")
        assert output(b, "t1", resolved) == f"shared-dep@{package[0]}\nresolved on b\n".encode()
    deps = tool.decision("deps")
    assert deps is not None and deps.result == "hit" and deps.tier == "remote"
    resolution = resolved.decision("resolution")
    assert resolution is not None and resolution.result == "hit" and resolution.tier == "remote"


def test_stats_show_the_shared_tier(fleet: Fleet, package: tuple[str, bytes]) -> None:
    import subprocess
    import sys

    build_on_a(fleet, app(package))
    b = fleet.reader("b")
    with Client(b.address) as client:
        client.build(files=app(package), app="shop", tenant="t1")
        remote = client.stats_response().remote
    assert remote.bucket == fleet.bucket and remote.prefix == "cache" and not remote.writer and not remote.circuit_open
    assert remote.bytes_in > 0 and remote.counters["hits.get_record"] >= 1
    out = subprocess.run([sys.executable, "-m", "cached", "stats", "--server", b.address], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and f"shared tier s3://{fleet.bucket}/cache (read-only)" in out.stdout, out.stdout + out.stderr
