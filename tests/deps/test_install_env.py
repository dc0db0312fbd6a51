"""Shared dependency trees depend on their key only: a request's env never reaches an install.

A tree is installed once per deps key and used by every tenant with the same
lockfile, so nothing of one request may shape it unless it is in that key.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from cached.deps.layer import install_commands
from cached.deps.resolution import RESOLVE_COMMAND
from cached.digest import Hasher
from cached.execution.environment import NpmSettings, base_env, child_env, install_env
from cached.execution.toolchain import Toolchain
from cached.keys import deps_inputs, deps_key, install_npmrc
from cached.request.spec import Limits, parse_request
from cached.v1 import cached_pb2, tree_pb2
from cached_client import CachedError, Client
from support import DaemonProcess, dev_tool_app, tiny_app, WRITE_DIST

POISON_ENV = {
    "NODE_ENV": "production",                      # npm ci would omit devDependencies (no build tool)
    "HTTPS_PROXY": "http://127.0.0.1:9",           # would send the install's traffic elsewhere
    "HTTP_PROXY": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "NODE_TLS_REJECT_UNAUTHORIZED": "0",          # would accept any certificate
    "NODE_EXTRA_CA_CERTS": "/tmp/attacker-ca.pem",
    "NPM_TOKEN": "x",
}


def _read(client: Client, tenant: str, result, path: str) -> bytes:  # type: ignore[no-untyped-def]
    o = next(o for o in result.outputs if o.path == path)
    return client.read_blob(tenant, tree_pb2.Digest(hash=o.hash, size=o.size, function=tree_pb2.BLAKE3))


def test_a_tenants_env_cannot_poison_the_tree_another_tenant_shares(make_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon: DaemonProcess = make_daemon()
    files = dev_tool_app()
    with Client(daemon.address) as client:
        # npm reads npm_config_* in any case: every spelling is refused outright.
        for name in ("npm_config_omit", "NPM_CONFIG_OMIT", "Npm_Config_Production"):
            with pytest.raises(CachedError) as refused:
                client.build(files=files, app="poison", tenant="tenant-a", env={name: "dev"})
            assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT and name in refused.value.details

        a = client.build(files=files, app="poison", tenant="tenant-a", env=POISON_ENV)
        # The build step does see the request's env; the install did not.
        assert _read(client, "tenant-a", a, "index.html") == b"devtool 1.0.0 NODE_ENV=production dev=true\n"
        assert [d.result for d in a.decisions if d.layer == "deps"] == ["miss"]

        b = client.build(files=dev_tool_app(name="other-app"), app="victim", tenant="tenant-b")
        assert [d.result for d in b.decisions if d.layer == "deps"] == ["hit"]  # the same tree, shared
        assert _read(client, "tenant-b", b, "index.html") == b"devtool 1.0.0 NODE_ENV= dev=true\n"
    trees = [p for p in (daemon.root / "trees").iterdir() if not p.name.startswith(".")]
    assert len(trees) == 1
    assert (trees[0] / "devtool" / "package.json").is_file()  # devDependencies are in the stored tree
    assert (trees[0] / ".bin" / "devtool").exists()


def test_a_tree_without_the_build_scripts_tool_fails_the_install_and_is_not_recorded(daemon: DaemonProcess) -> None:
    package = {"name": "notool", "version": "1.0.0", "private": True, "scripts": {"build": "tsc -b && vite build"}, "engines": {"node": ">=16.0.0"}}
    files = {**tiny_app(WRITE_DIST), "package.json": json.dumps(package).encode()}
    with Client(daemon.address) as client:
        before = client.stats_response().entries.get("deps", 0)
        for _ in range(2):  # the second attempt installs again: nothing was recorded
            with pytest.raises(CachedError) as e:
                client.build(files=files, app="notool", tenant="t1")
            assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION
            assert "node_modules/.bin/tsc" in e.value.details and "node_modules/.bin/vite" in e.value.details
            assert "devDependencies" in e.value.details
        assert client.stats_response().entries.get("deps", 0) == before


def test_install_and_resolution_steps_see_the_fixed_base_alone() -> None:
    base = base_env(Toolchain("20.0.0", "11.0.0", "/usr/bin/node", "/usr/bin/npm", "linux", "x86_64", "glibc-2.36"), NpmSettings(cache_dir="/c"))
    env = child_env(base, POISON_ENV, install=True)
    assert env == install_env(base)
    assert not set(POISON_ENV) & set(env)
    assert env["npm_config_include"] == "dev" and env["npm_config_ignore_scripts"] == "true"
    build = child_env(base, POISON_ENV, install=False)
    assert build["NODE_ENV"] == "production" and build["PATH"] == base["PATH"]
    assert "--include=dev" in install_commands(())[0] and "--include=dev" in RESOLVE_COMMAND


TOOLCHAIN = Toolchain("20.20.2", "11.19.1", "/usr/bin/node", "/usr/bin/npm", "linux", "x86_64", "glibc-2.36")
ACCEPTED = ("http://127.0.0.1:4873/",)  # the registries an app's .npmrc may name here (the daemon's, allowlisted ones)


def _spec(files: dict[str, bytes], env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    request = cached_pb2.BuildRequest(tenant="t1", app="a", env=env or {})
    for path, content in files.items():
        request.files.append(cached_pb2.File(path=path, content=content))
    return parse_request(request, Hasher(), Limits(registries=ACCEPTED), lambda t, d: False, lambda d: b"")


def _key(files: dict[str, bytes], env: dict[str, str] | None = None, toolchain: Toolchain = TOOLCHAIN) -> str:
    commands = [" ".join(c) for c in install_commands(())]
    return deps_key(Hasher(), deps_inputs(_spec(files, env), toolchain, commands))


def test_deps_key_follows_npmrc_allowlist_and_toolchain_never_the_request_env() -> None:
    files = dev_tool_app()
    key = _key(files)
    assert "--include=dev" in json.dumps(deps_inputs(_spec(files), TOOLCHAIN, [" ".join(c) for c in install_commands(())]).as_dict())
    # The request's env, whatever it holds, is not an input of the key.
    assert _key(files, POISON_ENV) == key
    assert _key(files, {"GREETING": "hi"}) == key
    # .npmrc keys that change an install change the key; others (log level, credentials) do not.
    for line in ("omit=dev", "legacy-peer-deps=true", "install-strategy=nested", "registry=http://127.0.0.1:4873/"):
        assert _key({**files, ".npmrc": line.encode() + b"\n"}) != key, line
    for line in ("loglevel=silly", "# omit=dev"):
        assert _key({**files, ".npmrc": line.encode() + b"\n"}) == key, line
    # The toolchain: node, npm, os, arch, libc.
    for change in ({"node": "22.0.0"}, {"npm": "10.0.0"}, {"arch": "aarch64"}, {"libc": "musl-1.2"}, {"os": "darwin"}):
        assert _key(files, toolchain=replace(TOOLCHAIN, **change)) != key, change
    assert _key(files, toolchain=replace(TOOLCHAIN, node_path="/opt/node/bin/node")) == key  # where it lives is not what it is
    # The install command line is in the key.
    assert deps_key(Hasher(), deps_inputs(_spec(files), TOOLCHAIN, ["npm ci --ignore-scripts"])) != key


def test_an_install_sees_only_the_npmrc_keys_its_deps_key_holds(tmp_path: Path) -> None:
    from cached.deps.layer import DependencyLayer

    npmrc = b"legacy-peer-deps=true\nworkspaces=false\ndry-run=true\n@own:registry=HTTP://127.0.0.1:4873\n# omit=dev\n"
    files = {**dev_tool_app(), ".npmrc": npmrc}
    spec = _spec(files)
    layer = DependencyLayer.__new__(DependencyLayer)  # only _write_inputs: no store, sandbox or npm needed
    layer.registry = ""
    layer._write_inputs(spec, tmp_path)
    kept = "legacy-peer-deps=true\n@own:registry=http://127.0.0.1:4873/\n"  # an accepted registry line reaches npm, normalised
    assert (tmp_path / ".npmrc").read_text() == kept
    assert install_npmrc(npmrc.decode()) == kept
    # Never a credential or a proxy, even in text that validation did not see.
    assert install_npmrc("//127.0.0.1:9/:_authToken=secret\nhttps-proxy=http://127.0.0.1:9/\n_auth=x\n") == ""
    # What reaches npm is exactly what the key holds: a dropped line changes neither.
    assert _key(files) == _key({**files, ".npmrc": kept.encode()})


def test_script_tools_are_the_commands_a_script_runs() -> None:
    from cached.execution.scripts import script_tools

    assert script_tools("vite build") == ["vite"]
    assert script_tools("tsc -b && vite build --mode x") == ["tsc", "vite"]
    assert script_tools("NODE_ENV=production cross-env A=1 vite build") == ["cross-env"]
    assert script_tools("if true; then rollup -c; fi | tee log") == ["rollup", "tee"]
    assert script_tools("./scripts/build.sh; $TOOL x; echo 'a && b'") == []
    assert script_tools('broken "quote') == []


def test_missing_tools_looks_in_bin_then_on_path(tmp_path: Path) -> None:
    from cached.deps.layer import missing_tools

    package = {"name": "x", "scripts": {"prebuild": "gen-types", "build": "tsc && vite build && node after.mjs"}}
    spec = _spec({**tiny_app(WRITE_DIST), "package.json": json.dumps(package).encode()})
    node_modules = tmp_path / "node_modules"
    (node_modules / ".bin").mkdir(parents=True)
    (node_modules / "vite" / "bin").mkdir(parents=True)
    (node_modules / "vite" / "bin" / "vite.js").write_text("")
    (node_modules / ".bin" / "vite").symlink_to("../vite/bin/vite.js")
    (node_modules / ".bin" / "tsc").symlink_to("../typescript/bin/tsc")  # dangling: not a tool
    assert missing_tools(spec, node_modules, "/usr/bin:/bin") == ["gen-types", "tsc"]
