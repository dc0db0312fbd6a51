"""The dependency layer on small real packages: resolution, deps keys, the overlay, repairs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cached_client import BuildResult, Client
from cached.v1 import tree_pb2
from support import DaemonProcess

READ_DEP = """
import { mkdirSync, writeFileSync, readFileSync } from "node:fs";
mkdirSync("dist", { recursive: true });
const pkg = JSON.parse(readFileSync("node_modules/is-number/package.json", "utf8"));
writeFileSync("dist/index.html", "is-number " + pkg.version + "\\n");
writeFileSync("dist/source.txt", readFileSync("node_modules/is-number/index.js"));
"""

TAMPER = """
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
let outcome = "appended";
try { appendFileSync("node_modules/is-number/index.js", "\\n// TAMPERED\\n"); } catch (e) { outcome = "refused:" + e.code; }
mkdirSync("dist", { recursive: true });
writeFileSync("dist/index.html", outcome);
"""


def app(version: str = "7.0.0", *, build_js: str = READ_DEP, scripts: dict[str, str] | None = None, lockfile: bytes | None = None, name: str = "dep-app") -> dict[str, bytes]:
    package = {"name": name, "version": "1.0.0", "private": True, "scripts": {"build": "node build.mjs", **(scripts or {})}, "dependencies": {"is-number": version}}
    files = {"package.json": json.dumps(package, indent=2).encode(), "build.mjs": build_js.encode()}
    if lockfile is not None:
        files["package-lock.json"] = lockfile
    return files


def decision(result: BuildResult, layer: str):  # type: ignore[no-untyped-def]
    return [d for d in result.decisions if d.layer == layer]


def blob(client: Client, tenant: str, result: BuildResult, path: str) -> bytes:
    o = next(o for o in result.outputs if o.path == path)
    return client.read_blob(tenant, tree_pb2.Digest(hash=o.hash, size=o.size, function=tree_pb2.BLAKE3))


def test_app_without_lockfile_builds_reuses_the_resolution_and_gets_a_usable_lockfile(daemon: DaemonProcess, npm_cache: Path, tmp_path: Path) -> None:
    with Client(daemon.address) as client:
        first = client.build(files=app(), app="nolock-a", tenant="deps")
        assert blob(client, "deps", first, "index.html") == b"is-number 7.0.0\n"
        assert first.lockfile and b"is-number" in first.lockfile
        assert b'"resolved"' not in first.lockfile
        assert [d.result for d in decision(first, "resolution")][0] in ("miss", "hit")
        second = client.build(files=app(name="other-name"), app="nolock-b", tenant="deps")
        assert [d.result for d in decision(second, "resolution")] == ["hit"]
        assert [d.result for d in decision(second, "deps")] == ["hit"]
        # The caller stores the lockfile and sends it next time: same keys, so a hit.
        with_lock = client.build(files=app(lockfile=first.lockfile), app="nolock-a", tenant="deps")
        assert with_lock.cache == "hit" and with_lock.action_key == first.action_key
    by_hand = tmp_path / "by-hand"
    by_hand.mkdir()
    (by_hand / "package.json").write_bytes(app()["package.json"])
    (by_hand / "package-lock.json").write_bytes(first.lockfile)
    env = {k: v for k, v in os.environ.items() if not k.startswith("npm_config_")}
    env["npm_config_cache"] = str(tmp_path / "own-npm-cache")
    subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=by_hand, env=env, check=True, capture_output=True)
    assert json.loads((by_hand / "node_modules" / "is-number" / "package.json").read_text())["version"] == "7.0.0"


def test_deps_key_follows_dependencies_and_install_scripts_not_the_build_script(daemon: DaemonProcess) -> None:
    with Client(daemon.address) as client:
        base = client.build(files=app(), app="deps-key", tenant="deps")
        assert blob(client, "deps", base, "index.html") == b"is-number 7.0.0\n"
        older = client.build(files=app("6.0.0"), app="deps-key", tenant="deps")
        (deps,) = [d for d in decision(older, "deps") if d.result == "miss"]
        assert deps.reason == "deps_changed" and "is-number 7.0.0 -> 6.0.0" in deps.detail
        assert blob(client, "deps", older, "index.html") == b"is-number 6.0.0\n"
        script_edit = client.build(files=app("6.0.0", scripts={"build": "node build.mjs --quiet"}), app="deps-key", tenant="deps")
        assert [d.result for d in decision(script_edit, "deps")] == ["hit"]
        assert script_edit.cache == "miss"
        postinstall = client.build(files=app("6.0.0", scripts={"postinstall": "echo installed"}), app="deps-key", tenant="deps")
        assert decision(postinstall, "deps")[0].result == "miss"


def test_a_build_cannot_change_the_stored_tree_through_node_modules(make_daemon) -> None:  # type: ignore[no-untyped-def]
    from cached.store import Store

    d: DaemonProcess = make_daemon()
    with Client(d.address) as client:
        reference = client.build(files=app(), app="reader-1", tenant="deps")
        original = blob(client, "deps", reference, "source.txt")
        tamper = client.build(files=app(build_js=TAMPER), app="tamper", tenant="deps")
        outcome = blob(client, "deps", tamper, "index.html").decode()
        assert outcome == "appended" or outcome.startswith("refused")
        after = client.build(files=app(build_js=READ_DEP + "// another app\n"), app="reader-2", tenant="deps")
        assert [x.result for x in decision(after, "deps")] == ["hit"]
        assert blob(client, "deps", after, "source.txt") == original
    d.stop()
    with Store.open(d.root) as store:
        report = store.verify()
    assert not report.corrupt and not report.missing


def test_a_materialised_tree_deleted_by_hand_is_rebuilt_from_the_store_without_npm(make_daemon) -> None:  # type: ignore[no-untyped-def]
    d: DaemonProcess = make_daemon()
    with Client(d.address) as client:
        client.build(files=app(), app="del-1", tenant="deps")
        trees = [p for p in (d.root / "trees").iterdir() if not p.name.startswith(".")]
        assert trees
        for tree in trees:
            subprocess.run(["chmod", "-R", "u+w", str(tree)], check=True)
            subprocess.run(["rm", "-rf", str(tree)], check=True)
        before = client.stats().processes_started
        again = client.build(files=app(build_js=READ_DEP + "// changed\n"), app="del-2", tenant="deps")
        assert client.stats().processes_started - before == 1  # the build only: no npm
        assert blob(client, "deps", again, "index.html") == b"is-number 7.0.0\n"
    assert [x.result for x in decision(again, "deps")] == ["hit"]


@pytest.mark.parametrize("point", ["ingest.after_blob:3", "ingest.before_manifest", "root.before_put"])
def test_a_crash_while_ingesting_node_modules_leaves_the_deps_entry_whole_or_absent(make_daemon, tmp_path: Path, point: str) -> None:  # type: ignore[no-untyped-def]
    from cached.store import Store

    root = tmp_path / "root"
    d: DaemonProcess = make_daemon(root, env={"CACHED_FAILPOINT": point})
    with Client(d.address) as client, pytest.raises(Exception):
        client.build(files=app(lockfile=None), app="crash-deps", tenant="deps")
    assert d.wait_exit() == 86
    with Store.open(root) as store:
        report = store.verify()
        assert not report.corrupt and not report.missing
        for entry in store.iter_roots("deps"):
            for tree in entry.trees:
                assert store.blobs.has(tree)
    d = make_daemon(root)
    with Client(d.address) as client:
        result = client.build(files=app(), app="crash-deps", tenant="deps")
        assert blob(client, "deps", result, "index.html") == b"is-number 7.0.0\n"


def test_a_lockfile_that_does_not_match_package_json_fails_with_npms_explanation(daemon: DaemonProcess) -> None:
    from cached_client import CachedError

    stale_lock = json.dumps({"name": "dep-app", "version": "1.0.0", "lockfileVersion": 3, "requires": True,
                             "packages": {"": {"name": "dep-app", "version": "1.0.0"}}}).encode()
    with Client(daemon.address) as client, pytest.raises(CachedError) as e:
        client.build(files=app(lockfile=stale_lock), app="out-of-sync", tenant="deps")
    assert e.value.code.name == "FAILED_PRECONDITION"
    assert "npm ci" in e.value.details and "sync" in e.value.details
