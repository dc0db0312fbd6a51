"""Tenant code runs only inside a build: a warm builder is frozen between builds
and killed at a build's deadline; its memory is what its cgroup counts.

The app is tiny: its `vite` is a stand-in package (installed from a tarball in
the app, no registry) that the real warm driver imports and drives like Vite:
it loads `vite.config.mjs` on each build, calls the driver's plugin hooks and
writes `dist/index.html`. The config starts a `setInterval(...).unref()` that
appends to a file of the workspace, as a config or plugin could.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import grpc
import pytest

from cached.sandbox import Cgroups, CgroupsUnavailable, root_id
from cached_client import BuildResult, CachedError, Client
from support import DaemonProcess, integrity, npm_tarball

FAKE_VITE = """
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
export const version = "0.0.0-stand-in";
let loads = 0;
export async function createBuilder(inline = {}) {
  const root = process.cwd();
  await import(pathToFileURL(resolve(root, "vite.config.mjs")).href + "?load=" + ++loads);
  const outDir = resolve(root, "dist");
  const config = { root, publicDir: "", build: { outDir, copyPublicDir: false } };
  const plugins = inline.plugins ?? [];
  return {
    config,
    async buildApp() {
      for (const p of plugins) p.configResolved?.(config);
      if (existsSync(resolve(root, "src/hang"))) await new Promise(() => {});
      await new Promise((done) => setTimeout(done, 300)); // work, during which the config's timer ticks
      mkdirSync(outDir, { recursive: true });
      writeFileSync(resolve(outDir, "index.html"), "<p>" + loads + "</p>\\n");
      const bundle = { "index.html": { type: "asset" } };
      for (const p of plugins) {
        const hook = typeof p.writeBundle === "function" ? p.writeBundle : p.writeBundle?.handler;
        await hook?.({ dir: outDir }, bundle);
      }
      for (const p of plugins) await p.buildEnd?.();
    },
  };
}
"""

FAKE_VITE_BIN = """#!/usr/bin/env node
import { createBuilder } from "../index.js";
await (await createBuilder()).buildApp();
"""

CONFIG = """
import { appendFileSync } from "node:fs";
setInterval(() => appendFileSync("ticks.log", "x"), 20).unref();
export default {};
"""


def stand_in_app(source: str, *, hang: bool = False) -> dict[str, bytes]:
    tgz = npm_tarball(
        "vite", "0.0.0-stand-in", {"index.js": FAKE_VITE, "bin/vite.js": FAKE_VITE_BIN},
        {"type": "module", "exports": {".": "./index.js"}, "bin": {"vite": "bin/vite.js"}}, executable={"bin/vite.js"},
    )
    spec = "file:patches/vite-0.0.0-stand-in.tgz"
    app = {"name": "frozen-app", "version": "1.0.0", "private": True, "scripts": {"build": "vite build"}, "devDependencies": {"vite": spec}}
    lock = {
        "name": "frozen-app", "version": "1.0.0", "lockfileVersion": 3, "requires": True,
        "packages": {
            "": {"name": "frozen-app", "version": "1.0.0", "devDependencies": {"vite": spec}},
            "node_modules/vite": {"version": "0.0.0-stand-in", "resolved": spec, "integrity": integrity(tgz), "dev": True, "bin": {"vite": "bin/vite.js"}},
        },
    }
    files = {
        "package.json": json.dumps(app, indent=2).encode(),
        "package-lock.json": json.dumps(lock, indent=2).encode(),
        "patches/vite-0.0.0-stand-in.tgz": tgz,
        "vite.config.mjs": CONFIG.encode(),
        "index.html": b"<script type=module src=/src/main.js></script>\n",
        "src/main.js": source.encode(),
    }
    if hang:
        files["src/hang"] = b""
    return files


def decision(result: BuildResult, layer: str):  # type: ignore[no-untyped-def]
    return [d for d in result.decisions if d.layer == layer][-1]


def warm_groups(root: Path) -> list:  # type: ignore[type-arg]
    try:
        groups = Cgroups.open(root_id(root.resolve()))
    except CgroupsUnavailable as e:
        pytest.skip(f"no usable cgroups here: {e}")
    return [g for g in groups.groups() if g.name.startswith("warm-")]


def driver_pids(workspace: Path) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if b"driver.mjs" in Path(f"/proc/{entry}/cmdline").read_bytes() and os.readlink(f"/proc/{entry}/cwd") == str(workspace):
                    found.append(int(entry))
            except OSError:
                continue
    return found


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else -1


def test_a_warm_builder_is_frozen_between_builds(make_daemon) -> None:  # type: ignore[no-untyped-def]
    d: DaemonProcess = make_daemon()
    workspace = d.root / "work" / "t1" / "frozen" / "ws"
    ticks = workspace / "ticks.log"
    with Client(d.address) as client:
        for n, expected in ((1, "started"), (2, "reused")):
            result = client.build(files=stand_in_app(f"export const n = {n};\n"), app="frozen", tenant="t1")
            assert decision(result, "warm").reason == expected, [(x.layer, x.reason, x.detail) for x in result.decisions]
            written = size(ticks)
            assert written > 0, "the config's timer never ran during the build: the check would prove nothing"
            time.sleep(2.0)
            assert size(ticks) == written, "the warm builder's timer kept writing after the build returned"
            [group] = warm_groups(d.root)
            assert group.is_frozen()
            assert driver_pids(workspace), "the builder should be alive (frozen), not gone"


def test_a_warm_build_past_its_deadline_kills_the_builder(make_daemon) -> None:  # type: ignore[no-untyped-def]
    d: DaemonProcess = make_daemon()
    workspace = d.root / "work" / "t1" / "hang" / "ws"
    with Client(d.address) as client:
        client.build(files=stand_in_app("export const n = 1;\n"), app="hang", tenant="t1")
        assert driver_pids(workspace)
        with pytest.raises(CachedError) as info:
            client.build(files=stand_in_app("export const n = 2;\n", hang=True), app="hang", tenant="t1", timeout_s=4)
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    deadline = time.monotonic() + 5
    while driver_pids(workspace) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert driver_pids(workspace) == []
    assert warm_groups(d.root) == []


class _FakeProc:
    """What WarmBuilder needs of a SandboxProcess, for the rules below."""

    def __init__(self, memory: int | None, freezes: bool) -> None:
        self.memory, self.freezes, self.killed = memory, freezes, False
        self.limited = memory is not None
        self.alive = True

    def memory_bytes(self) -> int | None:
        return self.memory

    def pids(self) -> list[int]:
        return [os.getpid()]

    async def freeze(self) -> bool:
        return self.freezes

    async def kill(self) -> int:
        self.killed, self.alive = True, False
        return -9


def test_the_pool_counts_a_builders_memory_from_its_cgroup_and_an_unfreezable_one_is_stopped(tmp_path: Path) -> None:
    import asyncio

    from cached.warm.builder import WarmBuilder, WarmError, _Route

    def builder(proc: _FakeProc) -> WarmBuilder:
        return WarmBuilder("t/a", "k", "d", {}, proc, tmp_path / "scratch", tmp_path, _Route())  # type: ignore[arg-type]

    assert builder(_FakeProc(123 << 20, True)).rss_bytes() == 123 << 20
    assert builder(_FakeProc(None, True)).rss_bytes() > 0  # no cgroup: RSS of the tree, as before
    stuck = _FakeProc(1, freezes=False)
    with pytest.raises(WarmError, match="could not be frozen"):
        asyncio.run(builder(stuck).pause())
    assert stuck.killed
