"""The hardlink fallback (no overlay): the workspace's node_modules shares the store's inodes, never its ownership."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from cached.deps import layer as layer_module
from cached.deps.layer import Dependencies, DependencyLayer
from cached.store import Store
from cached.v1 import tree_pb2
from cached_client import Client
from support import DaemonProcess, dev_tool_app

TAMPER = """
import { appendFileSync, chmodSync, statSync, writeFileSync } from "node:fs";
const target = "node_modules/devtool/package.json";
const results = [];
for (const [name, attempt] of [["chmod", () => chmodSync(target, 0o666)], ["append", () => appendFileSync(target, "//tampered")]]) {
  try { attempt(); results.push(name + ":done"); } catch (e) { results.push(name + ":" + e.code); }
}
const st = statSync(target);
writeFileSync("dist/tamper.txt", results.join(" ") + " uid=" + st.uid + " mode=" + (st.mode & 0o777).toString(8) + "\\n");
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox chowns the workspace only under a root daemon")
def test_a_build_in_hardlink_mode_never_owns_or_changes_a_store_blob(make_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon: DaemonProcess = make_daemon(args=["--deps-import", "hardlink", "--warm-builders", "0"])
    files = dev_tool_app(extra={"tamper.mjs": TAMPER.encode()})
    files["package.json"] = files["package.json"].replace(b'"devtool build"', b'"devtool build && node tamper.mjs"')
    with Client(daemon.address) as client:
        result = client.build(files=files, app="linked", tenant="t1")
        assert result.metrics is not None and result.metrics.deps_method == "hardlink"
        tamper = next(o for o in result.outputs if o.path == "tamper.txt")
        outcome = client.read_blob("t1", tree_pb2.Digest(hash=tamper.hash, size=tamper.size, function=tree_pb2.BLAKE3)).decode()
    assert outcome == "chmod:EPERM append:EACCES uid=0 mode=444\n", outcome

    blobs = [p for p in (daemon.root / "cas").rglob("*") if p.is_file()]
    assert blobs
    for blob in blobs:
        st = blob.lstat()
        assert (st.st_uid, st.st_gid) == (0, 0), blob
        assert stat.S_IMODE(st.st_mode) in (0o444, 0o555), (blob, oct(st.st_mode))
    linked = daemon.root / "work" / "t1" / "linked" / "ws" / "node_modules" / "devtool" / "package.json"
    st = linked.lstat()
    assert st.st_nlink > 1 and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o444  # still the blob, still root's
    assert any(b.lstat().st_ino == st.st_ino for b in blobs)
    assert b"tampered" not in linked.read_bytes()


def _layer(store: Store, tmp_path: Path, sandbox_mode: str) -> tuple[DependencyLayer, Dependencies]:
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "index.js").write_text("module.exports = 1;\n")
    digest, tree = store.trees.ingest(src)
    steps = SimpleNamespace(sandbox=SimpleNamespace(mode=sandbox_mode))
    layer = DependencyLayer(store, steps, tmp_path, npm_cache=tmp_path, method="hardlink", overlay_ok=False)  # type: ignore[arg-type]
    return layer, Dependencies("k", digest, tmp_path, len(tree.files), 0, "hardlink", 0.0)


@pytest.mark.parametrize("root,sandbox_mode,method", [
    (True, "namespaces", "hardlink"),   # the build runs as another uid, and the sandbox chowns no linked file
    (False, "namespaces", "copy"),      # a user namespace: the build is the blobs' owner
    (False, "off", "hardlink"),         # no sandbox: builds are trusted
])
def test_hardlinks_only_when_the_build_does_not_run_as_the_blobs_owner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root: bool, sandbox_mode: str, method: str) -> None:
    monkeypatch.setattr(layer_module, "_daemon_is_root", lambda: root)
    store = Store.open(tmp_path / "store", grace_seconds=0, lease_seconds=0)
    try:
        layer, deps = _layer(store, tmp_path, sandbox_mode)
        workspace = tmp_path / "ws"
        workspace.mkdir()
        layer.place(deps, workspace)
        assert deps.method == method
        placed = workspace / "node_modules" / "pkg" / "index.js"
        assert placed.read_text() == "module.exports = 1;\n"
        assert (placed.stat().st_nlink > 1) == (method == "hardlink")
    finally:
        store.close()
