"""The package store through the daemon: a changed lockfile costs the changed packages, and the rest says why.

A daemon pointed at a registry on 127.0.0.1 builds tiny apps whose build
reads its packages back, so each output shows which bytes were installed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from egress_support import LocalRegistry

from cached.v1 import cached_pb2, tree_pb2
from cached_client import CachedError, Client
from support import DaemonProcess, dev_tool_app, integrity, npm_tarball, sample, scrape, tiny_app

LIST_PACKAGES = """
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
mkdirSync("dist", { recursive: true });
const names = JSON.parse(readFileSync("package.json", "utf8")).dependencies ?? {};
writeFileSync("dist/out.txt", Object.keys(names).sort().map(n => readFileSync(`node_modules/${n}/index.js`, "utf8")).join(""));
"""


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    reg = LocalRegistry()
    yield reg
    reg.close()


@pytest.fixture(scope="module")
def store_daemon(tmp_path_factory: pytest.TempPathFactory, registry: LocalRegistry) -> Iterator[DaemonProcess]:
    base = tmp_path_factory.mktemp("package-store")
    proc = DaemonProcess(base / "root", base / "npm-cache", args=["--registry", registry.url, "--metrics-listen", "127.0.0.1:0"]).start()
    yield proc
    proc.stop()


def publish(registry: LocalRegistry, name: str) -> tuple[str, bytes]:
    """A package of its own name and a fresh version, so no test sees another's."""
    version = f"1.0.{uuid.uuid4().int % 10**8}"
    tarball = npm_tarball(name, version, {"index.js": f"{name}@{version}\n"})
    registry.publish(name, version, tarball)
    return version, tarball


def app(packages: dict[str, tuple[str, bytes]]) -> dict[str, bytes]:
    files = tiny_app(LIST_PACKAGES)
    package = json.loads(files["package.json"])
    lock = json.loads(files["package-lock.json"])
    package["dependencies"] = lock["packages"][""]["dependencies"] = {n: v for n, (v, _) in packages.items()}
    for name, (version, tarball) in packages.items():
        lock["packages"][f"node_modules/{name}"] = {"version": version, "integrity": integrity(tarball)}
    files["package.json"] = json.dumps(package, indent=2).encode()
    files["package-lock.json"] = json.dumps(lock, indent=2).encode()
    return files


def output(client: Client, tenant: str, result, path: str = "out.txt") -> bytes:  # type: ignore[no-untyped-def]
    o = next(o for o in result.outputs if o.path == path)
    return client.read_blob(tenant, tree_pb2.Digest(hash=o.hash, size=o.size, function=tree_pb2.BLAKE3))


def test_one_package_added_fetches_that_package_alone_and_runs_no_npm(store_daemon: DaemonProcess, registry: LocalRegistry) -> None:
    left, right = publish(registry, "left-pkg"), publish(registry, "right-pkg")
    with Client(store_daemon.address) as client:
        client.build(files=app({"left-pkg": left}), app="first", tenant="t1")
        before = client.stats().processes_started
        requests = len(registry.tarball_requests())
        counted = scrape(client.stats_response().metrics_address)
        result = client.build(files=app({"left-pkg": left, "right-pkg": right}), app="second", tenant="t1", keep_events=True)
        assert client.stats().processes_started - before == 1  # the build's node: no npm
        after = scrape(client.stats_response().metrics_address)
        assert output(client, "t1", result) == f"left-pkg@{left[0]}\nright-pkg@{right[0]}\n".encode()
    assert registry.tarball_requests()[requests:] == [f"/right-pkg/-/right-pkg-{right[0]}.tgz"]
    deps = result.decision("deps")
    assert deps is not None and deps.result == "miss" and deps.reason == "new_deps"
    assert f"right-pkg added ({right[0]})" in deps.detail and "laying out 2 packages from the package store" in deps.detail
    assert result.metrics is not None
    assert (result.metrics.packages_reused, result.metrics.packages_fetched) == (1, 1)
    assert result.metrics.package_bytes_downloaded == len(right[1])
    progress = [e.phase for e in result.events if e.HasField("phase") and e.phase.name == "fetch"]
    assert [p.state for p in progress] == [cached_pb2.Phase.STARTED, cached_pb2.Phase.PROGRESS, cached_pb2.Phase.FINISHED]
    assert sample(after, "cached_packages_fetched_total") - sample(counted, "cached_packages_fetched_total") == 1
    assert sample(after, "cached_packages_reused_total") - sample(counted, "cached_packages_reused_total") == 1
    assert sample(after, "cached_package_bytes_downloaded_total") - sample(counted, "cached_package_bytes_downloaded_total") == len(right[1])


def test_a_tarball_that_does_not_match_its_integrity_fails_and_stores_nothing(store_daemon: DaemonProcess, registry: LocalRegistry) -> None:
    good = publish(registry, "checked-pkg")
    forged = (good[0], npm_tarball("checked-pkg", good[0], {"index.js": "other bytes\n"}))  # the lockfile names bytes the registry lacks
    with Client(store_daemon.address) as client:
        with pytest.raises(CachedError) as e:
            client.build(files=app({"checked-pkg": forged}), app="forged", tenant="t1")
        assert e.value.code.name == "FAILED_PRECONDITION" and "does not match the lockfile's integrity" in e.value.details
        result = client.build(files=app({"checked-pkg": good}), app="forged", tenant="t1")
        assert output(client, "t1", result) == f"checked-pkg@{good[0]}\n".encode()
    assert result.metrics is not None and result.metrics.packages_fetched == 1  # nothing of the first attempt was kept


def test_an_entry_the_store_cannot_take_installs_with_npm_ci_and_says_which(store_daemon: DaemonProcess) -> None:
    with Client(store_daemon.address) as client:
        before = client.stats().processes_started
        result = client.build(files=dev_tool_app(name="from-a-file"), app="file-dep", tenant="t1")
        assert client.stats().processes_started - before >= 2  # npm ci, then the build
    deps = result.decision("deps")
    assert deps is not None and "installing with npm ci, because node_modules/devtool: resolved from file:patches/devtool-1.0.0.tgz" in deps.detail


def test_the_same_packages_in_another_app_share_their_files(store_daemon: DaemonProcess, registry: LocalRegistry) -> None:
    """Two trees laid out from one stored package name the same blobs: the package is kept once."""
    shared, other = publish(registry, "shared-pkg"), publish(registry, "other-pkg")
    with Client(store_daemon.address) as client:
        client.build(files=app({"shared-pkg": shared}), app="one", tenant="t2")
        result = client.build(files=app({"shared-pkg": shared, "other-pkg": other}), app="two", tenant="t2")
    assert result.metrics is not None and (result.metrics.packages_reused, result.metrics.packages_fetched) == (1, 1)
    assert sum(1 for p in registry.tarball_requests() if p.startswith("/shared-pkg/")) == 1


def test_a_package_whose_blobs_were_deleted_is_fetched_again(tmp_path: Path, registry: LocalRegistry) -> None:
    """A damaged package (its files and the trees made of them removed by hand) is forgotten and fetched again."""
    import shutil

    from cached.digest import Digest
    from cached.store import Store

    pkg = publish(registry, "fragile-pkg")
    root = tmp_path / "root"
    daemon = DaemonProcess(root, tmp_path / "npm-cache", args=["--registry", registry.url]).start()
    with Client(daemon.address) as client:
        client.build(files=app({"fragile-pkg": pkg}), app="fragile", tenant="t1")
    daemon.stop()
    with Store.open(root) as store:
        for entry in store.iter_roots("packages"):
            for tree in entry.trees:
                for f in store.trees.load(tree).files:
                    for path in store.blobs.files_of(Digest.from_proto(f.digest)):
                        path.unlink()
    for materialised in (root / "trees").iterdir():
        shutil.rmtree(materialised)
    daemon = DaemonProcess(root, tmp_path / "npm-cache", args=["--registry", registry.url]).start()
    try:
        with Client(daemon.address) as client:
            result = client.build(files=app({"fragile-pkg": pkg}), app="fragile", tenant="t1", force=True)
            assert output(client, "t1", result) == f"fragile-pkg@{pkg[0]}\n".encode()
            assert result.metrics is not None and result.metrics.packages_fetched == 1
    finally:
        daemon.stop()


def test_a_tarball_the_layout_cannot_take_is_installed_by_npm(store_daemon: DaemonProcess, registry: LocalRegistry) -> None:
    """A file where another entry needs a directory: npm's own unpacking decides, through npm ci."""
    from packages_support import tarball

    version = f"1.0.{uuid.uuid4().int % 10**8}"
    data = tarball([("package.json", json.dumps({"name": "odd-pkg", "version": version})), ("index.js", f"odd-pkg@{version}\n"),
                    ("lib", "a file first\n"), ("lib/inner.js", "then a directory\n")])
    registry.publish("odd-pkg", version, data)
    with Client(store_daemon.address) as client:
        before = client.stats().processes_started
        result = client.build(files=app({"odd-pkg": (version, data)}), app="odd", tenant="t1", keep_events=True)
        assert client.stats().processes_started - before >= 2  # npm ci, then the build
        assert output(client, "t1", result) == f"odd-pkg@{version}\n".encode()
    lines = [e.log.line for e in result.events if e.HasField("log")]
    assert any("installing with npm ci instead" in line and "needs a directory" in line for line in lines)
