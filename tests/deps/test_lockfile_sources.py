"""Installs fetch from the configured registry alone: lockfile ``resolved`` URLs are never followed,
and nothing in an install step reaches a port of the host.

The daemon here is pointed at a registry on 127.0.0.1 (``--registry``); a
trap listener on 127.0.0.1 stands for every other port of the host. Each
test publishes its own package version, so nothing one test fetched is in
the npm cache for the next.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from cached.deps.lockfile import ForeignSource, registry_only
from cached.sandbox.egress import PROXY_PORT
from cached.v1 import tree_pb2
from cached_client import CachedError, Client
from egress_support import LocalRegistry, Trap
from support import EXAMPLES, DaemonProcess, app_files, integrity, npm_tarball, tiny_app

PKG = "egresspkg"
PROBE_PKG = "egressprobe"
CACHE_PROBE_PKG = "cacheprobe"

COPY_PACKAGE = """
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
mkdirSync("dist", { recursive: true });
writeFileSync("dist/out.txt", readFileSync(process.env.FROM ?? "node_modules/egresspkg/index.js"));
"""


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    reg = LocalRegistry()
    yield reg
    reg.close()


@pytest.fixture(scope="module")
def local_daemon(tmp_path_factory: pytest.TempPathFactory, registry: LocalRegistry) -> Iterator[DaemonProcess]:
    base = tmp_path_factory.mktemp("egress")
    proc = DaemonProcess(base / "root", base / "npm-cache", args=["--registry", registry.url, "--allow-install-scripts", f"{PROBE_PKG},{CACHE_PROBE_PKG}"]).start()
    yield proc
    proc.stop()


def _publish(registry: LocalRegistry, version: str, files: dict[str, str] | None = None, package: dict[str, object] | None = None, name: str = PKG) -> bytes:
    tarball = npm_tarball(name, version, files or {"index.js": f"module.exports = {uuid.uuid4().hex!r};\n"}, package)
    registry.publish(name, version, tarball)
    return tarball


def _app(version: str, entry: dict[str, object], *, name: str = PKG, build: str = COPY_PACKAGE) -> dict[str, bytes]:
    files = tiny_app(build)
    package = json.loads(files["package.json"])
    lock = json.loads(files["package-lock.json"])
    package["dependencies"] = lock["packages"][""]["dependencies"] = {name: version}
    lock["packages"][f"node_modules/{name}"] = {"version": version, **entry}
    files["package.json"] = json.dumps(package, indent=2).encode()
    files["package-lock.json"] = json.dumps(lock, indent=2).encode()
    return files


def _output(client: Client, tenant: str, result, path: str) -> bytes:  # type: ignore[no-untyped-def]
    o = next(o for o in result.outputs if o.path == path)
    return client.read_blob(tenant, tree_pb2.Digest(hash=o.hash, size=o.size, function=tree_pb2.BLAKE3))


def test_a_resolved_url_to_a_host_port_is_never_fetched(local_daemon: DaemonProcess, registry: LocalRegistry, trap: Trap) -> None:
    """A registry-shaped tarball URL elsewhere: npm takes name@version from the registry, and checks the integrity."""
    tarball = _publish(registry, "1.0.1")
    planted = f"http://127.0.0.1:{trap.port}/{PKG}/-/{PKG}-1.0.1.tgz"
    with Client(local_daemon.address) as client:
        result = client.build(files=_app("1.0.1", {"resolved": planted, "integrity": integrity(tarball)}), app="planted", tenant="t1")
        assert _output(client, "t1", result, "out.txt") == tarball_file(tarball, "index.js")
    assert trap.connections == 0
    assert f"/{PKG}/-/{PKG}-1.0.1.tgz" in registry.tarball_requests()


def test_a_resolved_url_without_integrity_is_never_fetched_either(local_daemon: DaemonProcess, registry: LocalRegistry, trap: Trap) -> None:
    tarball = _publish(registry, "1.0.2")
    planted = f"http://127.0.0.1:{trap.port}/{PKG}/-/{PKG}-1.0.2.tgz"
    with Client(local_daemon.address) as client:
        result = client.build(files=_app("1.0.2", {"resolved": planted}), app="planted-no-integrity", tenant="t1")
        assert _output(client, "t1", result, "out.txt") == tarball_file(tarball, "index.js")
    assert trap.connections == 0


@pytest.mark.parametrize("with_integrity", [True, False])
def test_a_lockfile_entry_only_another_host_could_serve_is_refused_by_name(
    local_daemon: DaemonProcess, registry: LocalRegistry, trap: Trap, with_integrity: bool
) -> None:
    tarball = _publish(registry, "1.0.3")
    entry: dict[str, object] = {"resolved": f"http://127.0.0.1:{trap.port}/pkg.tgz"}
    if with_integrity:
        entry["integrity"] = integrity(tarball)
    with Client(local_daemon.address) as client, pytest.raises(CachedError) as refused:
        client.build(files=_app("1.0.3", entry), app=f"foreign-{int(with_integrity)}", tenant="t1")
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert f"node_modules/{PKG} from http://127.0.0.1:{trap.port}/pkg.tgz" in refused.value.details
    assert "reach only the registry" in refused.value.details
    assert trap.connections == 0


def test_a_dependency_on_a_url_is_refused_by_the_proxy_when_resolving(local_daemon: DaemonProcess, trap: Trap) -> None:
    """Without a lockfile npm resolves package.json itself: a URL there goes to the proxy, which refuses it."""
    files = tiny_app(COPY_PACKAGE)
    del files["package-lock.json"]
    package = json.loads(files["package.json"])
    package["dependencies"] = {PKG: f"http://127.0.0.1:{trap.port}/pkg.tgz"}
    files["package.json"] = json.dumps(package).encode()
    with Client(local_daemon.address) as client, pytest.raises(CachedError) as refused:
        client.build(files=files, app="url-dep", tenant="t1")
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert f"[cached] refused GET http://127.0.0.1:{trap.port}/pkg.tgz" in refused.value.details
    assert trap.connections == 0


def test_resolving_reaches_the_registry(local_daemon: DaemonProcess, registry: LocalRegistry) -> None:
    tarball = _publish(registry, "1.1.0")
    files = tiny_app(COPY_PACKAGE)
    del files["package-lock.json"]
    package = json.loads(files["package.json"])
    package["dependencies"] = {PKG: "~1.1.0"}
    files["package.json"] = json.dumps(package).encode()
    with Client(local_daemon.address) as client:
        result = client.build(files=files, app="resolved", tenant="t1")
        assert _output(client, "t1", result, "out.txt") == tarball_file(tarball, "index.js")
    assert json.loads(result.lockfile)["packages"][f"node_modules/{PKG}"]["version"] == "1.1.0"


PROBE = """
const net = require("net");
const fs = require("fs");
const out = {};
const proxy = new URL(process.env.npm_config_https_proxy || "http://127.0.0.1:PROXY");
function tcp(name, host, port) { return new Promise((done) => {
  const s = net.connect({ host, port }); s.setTimeout(3000);
  s.on("connect", () => { out[name] = "connected"; s.destroy(); done(); });
  s.on("error", (e) => { out[name] = "error " + e.code; done(); });
  s.on("timeout", () => { out[name] = "timeout"; s.destroy(); done(); });
}); }
function connect(name, target) { return new Promise((done) => {
  const s = net.connect({ host: proxy.hostname, port: Number(proxy.port) }); let data = ""; s.setTimeout(5000);
  const finish = (what) => { if (!(name in out)) out[name] = what; s.destroy(); done(); };
  s.on("connect", () => s.write(`CONNECT ${target} HTTP/1.1\\r\\nHost: ${target}\\r\\n\\r\\n`));
  s.on("data", (c) => { data += c; if (data.includes("\\r\\n")) finish(data.split("\\r\\n")[0]); });
  s.on("error", (e) => finish("error " + e.code));
  s.on("timeout", () => finish("timeout"));
}); }
(async () => {
  await tcp("daemon_grpc", "127.0.0.1", GRPC);
  await tcp("trap", "127.0.0.1", TRAP);
  await tcp("metadata", "169.254.169.254", 80);
  await connect("proxy_daemon_grpc", "127.0.0.1:GRPC");
  await connect("proxy_trap", "127.0.0.1:TRAP");
  await connect("proxy_registry", "127.0.0.1:REG");
  fs.writeFileSync("probe.json", JSON.stringify(out));
})();
"""


def test_a_tree_is_the_same_whether_resolved_was_absent_planted_or_the_registrys(
    local_daemon: DaemonProcess, registry: LocalRegistry, trap: Trap
) -> None:
    """Three lockfiles of one package, three deps keys, one tree: npm's own ``.package-lock.json`` included.
    (A package of its own: without ``resolved`` npm reads the packument, and ``--prefer-offline`` takes
    a cached one, which must not be one cached before this version was published.)"""
    pkg = "egresssame"
    tarball = _publish(registry, "1.2.0", name=pkg)
    at_registry = f"{registry.url}{pkg}/-/{pkg}-1.2.0.tgz"
    planted = f"http://127.0.0.1:{trap.port}/{pkg}/-/{pkg}-1.2.0.tgz"
    variants = {"absent": {}, "planted": {"resolved": planted}, "registry": {"resolved": at_registry}}
    hidden = {}
    with Client(local_daemon.address) as client:
        for name, entry in variants.items():
            files = _app("1.2.0", {**entry, "integrity": integrity(tarball)}, name=pkg)
            result = client.build(files=files, app=f"same-{name}", tenant="t1", env={"FROM": "node_modules/.package-lock.json"})
            assert [d.result for d in result.decisions if d.layer == "deps"] == ["miss"], name
            hidden[name] = _output(client, "t1", result, "out.txt")
    assert hidden["absent"] == hidden["planted"] == hidden["registry"], hidden
    assert json.loads(hidden["absent"])["packages"][f"node_modules/{pkg}"]["integrity"] == integrity(tarball)
    # trees/ is named by the tree's digest: the three installs stored one tree
    trees = [p for p in (local_daemon.root / "trees").iterdir() if (p / pkg).is_dir()]
    assert len(trees) == 1, trees
    assert trap.connections == 0


def test_an_install_script_reaches_no_port_of_the_host(local_daemon: DaemonProcess, registry: LocalRegistry, trap: Trap) -> None:
    """An allowlisted package's install script runs in the install step: the daemon's gRPC port, a
    listener of the host and a metadata address are out of reach; the proxy leads to the registry only."""
    script = PROBE.replace("PROXY", str(PROXY_PORT)).replace("GRPC", str(local_daemon.port)).replace("TRAP", str(trap.port)).replace("REG", str(registry.port))
    tarball = _publish(registry, "1.0.0", {"probe.js": script}, {"scripts": {"install": "node probe.js"}}, name=PROBE_PKG)
    entry = {"integrity": integrity(tarball), "hasInstallScript": True}
    files = _app("1.0.0", entry, name=PROBE_PKG)
    with Client(local_daemon.address) as client:
        result = client.build(files=files, app="probe", tenant="t1", env={"FROM": f"node_modules/{PROBE_PKG}/probe.json"})
        probe = json.loads(_output(client, "t1", result, "out.txt"))
    assert probe["daemon_grpc"].startswith("error") and probe["trap"].startswith("error"), probe
    assert probe["metadata"].startswith("error"), probe
    assert probe["proxy_daemon_grpc"] == "HTTP/1.1 403 Forbidden", probe
    assert probe["proxy_trap"] == "HTTP/1.1 403 Forbidden", probe
    assert probe["proxy_registry"] == "HTTP/1.1 200 Connection established", probe
    assert trap.connections == 0


def test_a_version_published_after_its_packument_was_cached_installs_from_a_lockfile_without_resolved(
    local_daemon: DaemonProcess, registry: LocalRegistry,
) -> None:
    """Lockfiles without ``resolved`` (as the example apps') name only version and integrity: the install
    fetches the registry's tarball itself, so a packument npm cached before the version existed does not
    fail it (npm ci --prefer-offline answered ETARGET)."""
    name = f"late{uuid.uuid4().hex[:8]}"
    first = _publish(registry, "1.0.0", name=name)
    with Client(local_daemon.address) as client:
        client.build(files=_app("1.0.0", {"integrity": integrity(first)}, name=name), app="late1", tenant="t1",
                     env={"FROM": f"node_modules/{name}/index.js"})
        second = _publish(registry, "2.0.0", name=name)  # the packument in npm's cache knows only 1.0.0
        result = client.build(files=_app("2.0.0", {"integrity": integrity(second)}, name=name), app="late2", tenant="t1",
                              env={"FROM": f"node_modules/{name}/index.js"})
        assert _output(client, "t1", result, "out.txt").startswith(b"module.exports")


CACHE_PROBE = """
const fs = require("node:fs"), path = require("node:path");
const cache = process.env.npm_config_cache || "";
let write;
try { fs.writeFileSync(path.join(cache, "planted-by-an-install-script"), "x"); write = "written"; } catch (e) { write = "error " + e.code; }
fs.writeFileSync("probe.json", JSON.stringify({ cache, write }));
"""


def test_an_install_script_cannot_write_the_npm_cache_every_install_shares(local_daemon: DaemonProcess, registry: LocalRegistry) -> None:
    """The rebuild step runs allowlisted packages' scripts: the npm cache that the next tenant's install
    reads is bound read-only there (only npm's own fetch writes it)."""
    tarball = _publish(registry, "1.0.0", {"probe.js": CACHE_PROBE}, {"scripts": {"install": "node probe.js"}}, name=CACHE_PROBE_PKG)
    files = _app("1.0.0", {"integrity": integrity(tarball), "hasInstallScript": True}, name=CACHE_PROBE_PKG)
    with Client(local_daemon.address) as client:
        result = client.build(files=files, app="cacheprobe", tenant="t1", env={"FROM": f"node_modules/{CACHE_PROBE_PKG}/probe.json"})
        probe = json.loads(_output(client, "t1", result, "out.txt"))
    assert probe["cache"] == str(local_daemon.npm_cache), probe  # the script did see the cache's path
    assert probe["write"].startswith("error"), probe
    assert not (local_daemon.npm_cache / "planted-by-an-install-script").exists()


def test_examples_hello_installs_from_the_registry_through_the_proxy(make_daemon) -> None:  # type: ignore[no-untyped-def]
    """The real registry (npm's own setting), the session's npm cache: npm ci's install goes through the proxy, nothing is refused."""
    daemon: DaemonProcess = make_daemon(args=["--no-package-store"])
    with Client(daemon.address) as client:
        result = client.build(files=app_files(EXAMPLES / "hello"), app="hello", tenant="t1")
    assert any(o.path == "index.html" for o in result.outputs)
    records = [json.loads(line) for line in daemon.log().splitlines() if '"msg": "egress"' in line]
    installs = [r for r in records if r.get("run") == "install"]
    assert installs and all(r["refused"] == 0 for r in installs), records
    assert "egress refused" not in daemon.log()


def tarball_file(tarball: bytes, path: str) -> bytes:
    import gzip
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(tarball))) as tar:
        member = tar.extractfile(f"package/{path}")
        assert member is not None
        return member.read()


# -- the install's copy of the lockfile, without processes --------------------------------------------

REGISTRY = "https://registry.test/npm/"


def _lock(entries: dict[str, dict[str, object]]) -> bytes:
    return json.dumps({"name": "a", "lockfileVersion": 3, "requires": True, "packages": {"": {"name": "a"}, **entries}}).encode()


def test_entries_at_the_registry_and_local_ones_are_kept_as_they_are() -> None:
    lock = _lock({
        "node_modules/a": {"version": "1.0.0", "resolved": "https://registry.test/npm/a/-/a-1.0.0.tgz", "integrity": "sha512-x"},
        "node_modules/c": {"version": "1.0.0", "resolved": "file:patches/c-1.0.0.tgz", "integrity": "sha512-z"},
        "node_modules/d": {"resolved": "packages/d", "link": True},
        "packages/d": {"version": "1.0.0"},
        "node_modules/e/node_modules/f": {"version": "1.0.0", "inBundle": True},
    })
    assert registry_only(lock, REGISTRY) is lock  # unchanged, byte for byte


def test_an_entry_without_resolved_is_resolved_to_the_registrys_tarball() -> None:
    lock = _lock({
        "node_modules/b": {"version": "1.0.0", "integrity": "sha512-y"},
        "node_modules/@s/g": {"version": "2.0.0", "integrity": "sha512-w"},
        "node_modules/al": {"name": "real", "version": "3.0.0", "integrity": "sha512-v"},
    })
    out = json.loads(registry_only(lock, REGISTRY))["packages"]
    assert out["node_modules/b"]["resolved"] == "https://registry.test/npm/b/-/b-1.0.0.tgz"
    assert out["node_modules/@s/g"]["resolved"] == "https://registry.test/npm/@s/g/-/g-2.0.0.tgz"
    assert out["node_modules/al"]["resolved"] == "https://registry.test/npm/real/-/real-3.0.0.tgz"


def test_registry_tarballs_elsewhere_are_fetched_from_the_registry() -> None:
    lock = _lock({
        "node_modules/a": {"version": "1.0.0", "resolved": "https://mirror.test/a/-/a-1.0.0.tgz", "integrity": "sha512-x", "dev": True},
        "node_modules/@s/b": {"version": "2.0.0", "resolved": "http://127.0.0.1:9/@s/b/-/b-2.0.0.tgz"},
        "node_modules/alias": {"name": "real", "version": "3.0.0", "resolved": "https://registry.test:444/npm/real/-/real-3.0.0.tgz"},
        "node_modules/e": {"version": "1.0.0", "resolved": "http://registry.test/npm/e/-/e-1.0.0.tgz"},  # http, not https: elsewhere
    })
    out = json.loads(registry_only(lock, REGISTRY))["packages"]
    assert out["node_modules/a"] == {"version": "1.0.0", "resolved": f"{REGISTRY}a/-/a-1.0.0.tgz", "integrity": "sha512-x", "dev": True}
    assert out["node_modules/@s/b"] == {"version": "2.0.0", "resolved": f"{REGISTRY}@s/b/-/b-2.0.0.tgz"}
    assert out["node_modules/alias"] == {"name": "real", "version": "3.0.0", "resolved": f"{REGISTRY}real/-/real-3.0.0.tgz"}
    assert out["node_modules/e"] == {"version": "1.0.0", "resolved": f"{REGISTRY}e/-/e-1.0.0.tgz"}


@pytest.mark.parametrize("resolved", [
    "http://127.0.0.1:9/pkg.tgz",
    "https://mirror.test/a/-/a-1.0.0.tgz.evil",
    "https://registry.test/elsewhere/a.tgz",  # the registry's host, outside its path
    "https://mirror.test/a/-/a-1.0.1.tgz",  # another version than the entry's
    "git+ssh://git@git.test/a/a.git#0123456789abcdef0123456789abcdef01234567",
    "github:a/a#0123456",
])
def test_anything_else_is_refused_by_name(resolved: str) -> None:
    lock = _lock({"node_modules/a": {"version": "1.0.0", "resolved": resolved}})
    with pytest.raises(ForeignSource) as refused:
        registry_only(lock, REGISTRY)
    assert refused.value.entries == [("node_modules/a", resolved)]
    assert f"node_modules/a from {resolved}" in str(refused.value)


def test_a_v1_lockfile_is_rewritten_too() -> None:
    lock = json.dumps({"lockfileVersion": 1, "dependencies": {
        "a": {"version": "1.0.0", "resolved": "http://127.0.0.1:9/a/-/a-1.0.0.tgz", "dependencies": {
            "b": {"version": "npm:real@2.0.0", "resolved": "http://127.0.0.1:9/real/-/real-2.0.0.tgz"},
        }},
        "c": {"version": "git+https://git.test/c.git#abc"},
        "d": {"version": "file:patches/d.tgz"},
    }}).encode()
    with pytest.raises(ForeignSource) as refused:
        registry_only(lock, REGISTRY)
    assert refused.value.entries == [("dependencies: c", "git+https://git.test/c.git#abc")]
    fixed = json.loads(lock)
    del fixed["dependencies"]["c"]
    out = json.loads(registry_only(json.dumps(fixed).encode(), REGISTRY))["dependencies"]
    assert out["a"]["resolved"] == f"{REGISTRY}a/-/a-1.0.0.tgz"
    assert out["a"]["dependencies"]["b"]["resolved"] == f"{REGISTRY}real/-/real-2.0.0.tgz"


def test_hellos_lockfile_resolved_elsewhere_is_resolved_to_the_registry() -> None:
    """examples/hello's lockfile (no ``resolved``) with every entry resolved to another host: each
    entry is then resolved to the registry, and nothing else of the lockfile changes."""
    original = json.loads((EXAMPLES / "hello" / "package-lock.json").read_bytes())
    planted = json.loads(json.dumps(original))
    for key, entry in planted["packages"].items():
        if key:
            name = entry.get("name") or key.rsplit("node_modules/", 1)[-1]
            entry["resolved"] = f"http://127.0.0.1:9/{name}/-/{name.rsplit('/', 1)[-1]}-{entry['version']}.tgz"
    out = json.loads(registry_only(json.dumps(planted).encode(), REGISTRY))
    for key, entry in out["packages"].items():
        if key:
            assert entry.pop("resolved").startswith(REGISTRY), key
    assert out == original
