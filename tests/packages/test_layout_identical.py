"""The package store's node_modules is npm's: each lockfile laid out both ways, every path, digest, mode and link compared.

The example apps go to the real registry (npm's own setting) through the
session's npm cache; the crafted lockfile is made by npm itself against a
registry on 127.0.0.1 whose packages cover what npm decides at install time:
two versions of one package (nested ``node_modules``), scoped packages,
several bins and a bin name claimed twice, nested ``.bin``, a CRLF shebang,
platform-specific optional packages (and what only they need), an optional
package whose engines do not match, peer and optional peer dependencies, and
tarballs with unusual modes and entries.
"""

from __future__ import annotations

import json
import os
import platform as py_platform
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from packages_support import CraftedRegistry, differences, ingest_copy, lay_out, npm_ci, npm_env, npm_setting, package, run_npm

from cached.store import Store

ROOT = Path(__file__).resolve().parents[2]
CPU = {"x86_64": "x64", "aarch64": "arm64"}.get(py_platform.machine(), py_platform.machine())
OTHER_CPU = "arm64" if CPU == "x64" else "x64"


def registry() -> str:
    return npm_setting("registry")


@pytest.mark.parametrize("example", ["dashboard", "hello"])
def test_an_example_apps_lockfile_is_laid_out_as_npm_ci_lays_it_out(example: str, tmp_path: Path, npm_cache: Path) -> None:
    app = ROOT / "examples" / example
    node_modules = npm_ci(app, tmp_path / "npm", npm_cache, registry())
    with Store.open(tmp_path / "store") as store:
        done = lay_out(store, app, registry(), npm_cache)
        npm_digest, npm_tree = ingest_copy(store, node_modules)
        assert differences(done.made.tree, npm_tree) == []
        assert done.made.digest == npm_digest  # the same tree: the same deps entry whichever way it was made
    if example == "dashboard":  # the platform bindings npm chose are the ones laid out, and no other
        skipped = {p.rsplit("/", 1)[-1] for p in done.layout.skipped}
        assert f"binding-linux-{CPU}-gnu" not in skipped and f"binding-linux-{CPU}-gnu" in {e.folder.rsplit("/", 1)[-1] for e in done.layout.entries}
        assert "binding-darwin-arm64" in skipped and f"lightningcss-linux-{CPU}-gnu" not in skipped
        assert (node_modules / "@rolldown" / f"binding-linux-{CPU}-gnu").is_dir()
        assert not (node_modules / "@rolldown" / "binding-darwin-arm64").exists()


# -- a lockfile of crafted packages ---------------------------------------------------------------

CRLF_BIN = b"#!/usr/bin/env node\r\nconsole.log('alpha one')\r\n"
ROOT_DEPENDENCIES = {
    "alpha": "1.0.0", "beta": "1.0.0", "@scope/tool": "1.0.0", "native": "1.0.0", "plugin": "1.0.0",
    "modes": "1.0.0", "oddtop": "1.0.0", "aliased": "npm:alpha@2.0.0",
}


def crafted_packages() -> list[tuple[str, str, dict[str, object], bytes]]:
    mode_members: list[tuple[str, object]] = [
        ("all.sh", {"data": "#!/bin/sh\necho all\n", "mode": 0o777}),
        ("owner-only.sh", {"data": "#!/bin/sh\n", "mode": 0o700}),
        ("private.txt", {"data": "private\n", "mode": 0o600}),
        ("readonly.txt", {"data": "read only\n", "mode": 0o444}),
        ("group-exec.txt", {"data": "group x\n", "mode": 0o654}),
        ("setuid.sh", {"data": "#!/bin/sh\n", "mode": 0o4755}),
        (".gitignore", "dist\n"),                      # becomes .npmignore
        ("sub/.npmignore", "keep\n"),
        ("sub/.gitignore", "dropped: .npmignore came first\n"),
        ("empty-dir", {"type": "dir"}),                # npm writes no directory of its own
        ("link-to-index", {"type": "symlink", "target": "index.js"}),
        ("hard-link", {"type": "hardlink", "target": "index.js"}),
        ("../escape.txt", {"data": "outside\n"}),       # has a .. component: dropped
        ("a/./dotted.js", "normalised\n"),
        ("dup.txt", "first\n"),
        ("dup.txt", "second wins\n"),
        ("README", {"data": "no top directory\n", "raw": True}),  # nothing left after the strip: dropped
    ]
    return [
        package("alpha", "1.0.0", {"bin": {"alpha": "bin/alpha.js", "al": "./bin/alpha.js"}},
                {"index.js": "module.exports = 1\n", "bin/alpha.js": CRLF_BIN}),
        package("alpha", "2.0.0", {"bin": "cli.js"}, {"cli.js": "#!/usr/bin/env node\nconsole.log(2)\n"}),
        package("beta", "1.0.0", {"dependencies": {"alpha": "2.0.0"}, "bin": {"beta": "beta.js", "missing-bin": "nope.js"}},
                {"beta.js": "#!/usr/bin/env node\n"}),
        package("@scope/tool", "1.0.0", {"bin": {"scoped-tool": "dist/run.js", "alpha": "dist/run.js"}}, {"dist/run.js": "#!/usr/bin/env node\n"}),
        package("native", "1.0.0", {"optionalDependencies": {"native-here": "1.0.0", "native-darwin": "1.0.0", "native-other-cpu": "1.0.0",
                                                              "native-musl": "1.0.0", "native-future-node": "1.0.0"}}),
        package("native-here", "1.0.0", {"os": ["linux"], "cpu": [CPU]}),
        package("native-darwin", "1.0.0", {"os": ["darwin"], "dependencies": {"darwin-helper": "1.0.0", "shared-helper": "1.0.0"}}),
        package("native-other-cpu", "1.0.0", {"cpu": [OTHER_CPU], "bin": {"other": "index.js"}}),
        package("native-musl", "1.0.0", {"os": ["linux"], "libc": ["musl"]}),
        package("native-future-node", "1.0.0", {"engines": {"node": ">=999"}}),
        package("darwin-helper", "1.0.0"),
        package("shared-helper", "1.0.0"),
        package("plugin", "1.0.0", {"peerDependencies": {"host": "^1.0.0", "maybe": "^1.0.0"}, "peerDependenciesMeta": {"maybe": {"optional": True}},
                                    "dependencies": {"shared-helper": "1.0.0"}}),
        package("host", "1.0.0"),
        package("maybe", "1.0.0"),
        package("modes", "1.0.0", {"bin": {"modes-all": "all.sh"}}, {"index.js": "module.exports = 'modes'\n"}, extra=mode_members),
        package("oddtop", "1.0.0", top="node"),
    ]


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CraftedRegistry, Path]]:
    """The crafted registry, and an app whose lockfile npm resolved against it."""
    reg = CraftedRegistry()
    for name, version, manifest, data in crafted_packages():
        reg.add(name, version, manifest, data)
    app = tmp_path_factory.mktemp("crafted-app")
    (app / "package.json").write_text(json.dumps({"name": "crafted", "version": "1.0.0", "dependencies": ROOT_DEPENDENCIES}, indent=2) + "\n")
    run_npm(["npm", "install", "--package-lock-only", "--ignore-scripts"], app, npm_env(app / ".npm-cache", reg.url, app))
    assert '"resolved"' not in (app / "package-lock.json").read_text()
    yield reg, app
    reg.close()


def test_a_crafted_lockfile_is_laid_out_as_npm_ci_lays_it_out(crafted: tuple[CraftedRegistry, Path], tmp_path: Path) -> None:
    reg, app = crafted
    node_modules = npm_ci(app, tmp_path / "npm", tmp_path / "npm-cache", reg.url)
    with Store.open(tmp_path / "store") as store:
        done = lay_out(store, app, reg.url, None)
        _, npm_tree = ingest_copy(store, node_modules)
        assert differences(done.made.tree, npm_tree) == []
    lock = json.loads((app / "package-lock.json").read_text())["packages"]
    # what the lockfile had to exercise, so the comparison above covers it
    assert "node_modules/beta/node_modules/alpha" in lock and "node_modules/host" in lock
    assert {"node_modules/native-darwin", "node_modules/darwin-helper"} <= set(lock)
    assert (node_modules / "beta/node_modules/.bin/alpha").is_symlink()
    assert os.readlink(node_modules / ".bin/alpha") == "../@scope/tool/dist/run.js"  # the first claim (by lockfile order) wins
    assert not (node_modules / "native-darwin").exists() and not (node_modules / "darwin-helper").exists()
    assert (node_modules / "shared-helper").is_dir()  # plugin needs it too: it stays
    assert not (node_modules / "maybe").exists() and not (node_modules / "native-future-node").exists()
    assert (node_modules / "alpha/bin/alpha.js").read_bytes() == CRLF_BIN.replace(b"\r\n", b"\n", 1)
    assert not (node_modules / ".bin/missing-bin").exists()
    assert set(done.layout.skipped) == {"node_modules/native-darwin", "node_modules/darwin-helper", "node_modules/native-other-cpu",
                                        "node_modules/native-musl", "node_modules/native-future-node"}


def test_npms_file_modes_are_the_ones_the_layout_predicts(crafted: tuple[CraftedRegistry, Path], tmp_path: Path) -> None:
    """The store keeps an exec bit; this checks the whole mode npm gives each file follows the rule the layout applies."""
    from cached.packages.tarball import unpack

    reg, app = crafted
    node_modules = npm_ci(app, tmp_path / "npm", tmp_path / "npm-cache", reg.url)
    modes_tarball = next(data for name, _, _, data in crafted_packages() if name == "modes")
    predicted = {f.path: f.mode for f in unpack(modes_tarball, "modes@1.0.0")}
    predicted["all.sh"] = 0o755  # a bin's target: npm chmods it when it links the bin
    actual = {}
    for path in (node_modules / "modes").rglob("*"):
        st = path.lstat()
        if stat.S_ISREG(st.st_mode):
            actual[str(path.relative_to(node_modules / "modes"))] = stat.S_IMODE(st.st_mode)
        else:
            assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755, path  # no links, no empty dir of the tarball's
    assert actual == predicted
    assert {".npmignore", "sub/.npmignore", "a/dotted.js", "dup.txt"} <= set(actual) and "sub/.gitignore" not in actual
    assert (node_modules / "modes/dup.txt").read_text() == "second wins\n"
    assert not (node_modules / "modes/empty-dir").exists() and not (node_modules / "escape.txt").exists()
