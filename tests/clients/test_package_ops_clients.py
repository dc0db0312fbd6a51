"""purge --package and explain --package against a real daemon, from Python, the CLI and Ruby.

One real install: ``dev_tool_app`` holds ``devtool@1.0.0`` from a tarball in the app (npm ci needs no
network), built for two apps of one tenant; a tiny app without dependencies stands for what must stay.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from cached_client import Client, InvalidRequest, PermissionDenied
from support import REPO, WRITE_DIST, DaemonProcess, dev_tool_app, tiny_app

ADMIN_TOKEN = "admin-token-package-ops-0123"
ACME_TOKEN = "build-token-acme-package-0123"
RUBY_DIR = REPO / "client" / "ruby"


def _daemon(make_daemon: Callable[..., DaemonProcess], tmp_path: Path) -> DaemonProcess:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"build:acme:{ACME_TOKEN}\nbuild:bars:build-token-bars-package-0123\nadmin:{ADMIN_TOKEN}\n")
    return make_daemon(args=["--token-file", str(tokens)])


def _build_apps(daemon: DaemonProcess) -> None:
    """acme/shop and acme/blog on the tree holding devtool@1.0.0; bars/plain on an empty one."""
    with Client(daemon.address, token=ADMIN_TOKEN) as client:
        shop = client.build(files=dev_tool_app(), app="shop", tenant="acme")
        blog = client.build(files=dev_tool_app(name="blog-app"), app="blog", tenant="acme")
        plain = client.build(files=tiny_app(WRITE_DIST), app="plain", tenant="bars")
    assert shop.decision("deps").result == "miss" and blog.decision("deps").result == "hit"  # one tree, two apps
    assert plain.cache == "miss"


def _cli(daemon: DaemonProcess, *args: str, token: str = ADMIN_TOKEN) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cached", *args, "--server", daemon.address, "--token", token],
                          capture_output=True, text=True, timeout=300)


def test_explain_then_purge_a_package_from_python_and_the_cli(make_daemon: Callable[..., DaemonProcess], tmp_path: Path) -> None:
    daemon = _daemon(make_daemon, tmp_path)
    _build_apps(daemon)
    with Client(daemon.address, token=ADMIN_TOKEN) as client:
        explained = client.explain_package("devtool")
        assert [(u.tenant, u.app, list(u.versions), list(u.paths)) for u in explained.uses] == [
            ("acme", "blog", ["1.0.0"], ["node_modules/devtool"]), ("acme", "shop", ["1.0.0"], ["node_modules/devtool"])]
        assert (explained.apps, list(explained.tenants), explained.trees, explained.apps_unknown) == (2, ["acme"], 1, 0)
        assert client.explain_package("devtool@9.9.9").apps == 0

        with pytest.raises(InvalidRequest) as bad:
            client.purge_package("devtool")
        assert "NAME@VERSION" in bad.value.details
        with pytest.raises(InvalidRequest):
            client.purge_package("devtool@latest")
        with pytest.raises(InvalidRequest):
            client.explain_package("")

        dry = _cli(daemon, "purge", "--package", "devtool@1.0.0", "--dry-run", "--json")
        assert dry.returncode == 0, dry.stderr
        planned = json.loads(dry.stdout)
        assert planned["dry_run"] and planned["by_kind"]["deps"]["entries"] == 1 and planned["by_kind"]["actions"]["entries"] == 2
        text = _cli(daemon, "explain", "--package", "devtool@1.0.0")
        assert text.returncode == 0 and "acme/shop: 1.0.0 at node_modules/devtool" in text.stdout, text.stdout + text.stderr
        assert "cached purge --package devtool@1.0.0" in text.stdout

        purged = client.purge_package("devtool@1.0.0")
        assert {k: v.entries for k, v in purged.by_kind.items()} == {"deps": 1, "actions": 2}
        assert purged.by_kind["deps"].bytes > 0 and purged.entries == 3 and list(purged.apps) == ["acme/blog", "acme/shop"]
        assert client.explain_package("devtool").trees == 0

        plain = client.build(files=tiny_app(WRITE_DIST), app="plain", tenant="bars")
        assert plain.cache == "hit"  # what did not use the package stays
        again = client.build(files=dev_tool_app(), app="shop", tenant="acme")
        assert again.cache == "miss" and again.decision("action").reason == "purged", again.decisions
        assert again.decision("deps").result == "miss"  # installed afresh, not served from the purged tree

    nothing = _cli(daemon, "purge", "--package", "left-pad@1.3.0")
    assert nothing.returncode == 0 and "nothing to remove" in nothing.stdout
    bad_cli = _cli(daemon, "purge", "--package", "left-pad")
    assert bad_cli.returncode == 1 and "INVALID_ARGUMENT" in bad_cli.stderr and "NAME@VERSION" in bad_cli.stderr


def test_a_tenant_token_may_neither_explain_nor_purge_a_package(make_daemon: Callable[..., DaemonProcess], tmp_path: Path) -> None:
    daemon = _daemon(make_daemon, tmp_path)
    with Client(daemon.address, token=ACME_TOKEN) as client:
        with pytest.raises(PermissionDenied):
            client.explain_package("devtool")
        with pytest.raises(PermissionDenied):
            client.purge_package("devtool@1.0.0")
    refused = _cli(daemon, "explain", "--package", "devtool", token=ACME_TOKEN)
    assert refused.returncode == 1 and "PERMISSION_DENIED" in refused.stderr


RUBY_SCRIPT = r"""
require "json"
require "cached"
admin = Cached::Client.new(ARGV[0], token: ARGV[1])
tenant = Cached::Client.new(ARGV[0], token: ARGV[2])
out = {}
e = admin.explain_package(package: "devtool")
out["uses"] = e.uses.map { |u| [u.tenant, u.app, u.versions.to_a, u.paths.to_a] }
out["trees"] = e.trees
%w[explain purge].each do |what|
  begin
    what == "explain" ? tenant.explain_package(package: "devtool") : tenant.purge_package(package: "devtool@1.0.0")
  rescue Cached::Error => err
    out["tenant_#{what}"] = err.status.to_s
  end
end
begin
  admin.purge_package(package: "devtool")
rescue Cached::Error => err
  out["bad"] = [err.status.to_s, err.details]
end
dry = admin.purge_package(package: "devtool@1.0.0", dry_run: true)
out["dry"] = [dry.dry_run, dry.entries]
p = admin.purge_package(package: "devtool@1.0.0")
out["by_kind"] = p.by_kind.keys.to_h { |k| [k, p.by_kind[k].entries] }
out["apps"] = p.apps.to_a
out["after"] = admin.explain_package(package: "devtool@1.0.0").apps
puts JSON.generate(out)
"""


def test_the_ruby_client_explains_and_purges_a_package(make_daemon: Callable[..., DaemonProcess], tmp_path: Path) -> None:
    ruby = shutil.which("ruby")
    if ruby is None:
        pytest.fail("ruby is missing: `make deps` installs Debian's ruby and ruby-grpc")
    daemon = _daemon(make_daemon, tmp_path)
    _build_apps(daemon)
    env = {k: v for k, v in os.environ.items() if k not in ("CACHED_TOKEN", "CACHED_ADDRESS")}
    run = subprocess.run([ruby, "-Ilib", "-e", RUBY_SCRIPT, daemon.address, ADMIN_TOKEN, ACME_TOKEN],
                         cwd=RUBY_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["uses"] == [["acme", "blog", ["1.0.0"], ["node_modules/devtool"]], ["acme", "shop", ["1.0.0"], ["node_modules/devtool"]]]
    assert out["trees"] == 1
    assert out["tenant_explain"] == out["tenant_purge"] == "permission_denied"
    assert out["bad"][0] == "invalid_argument" and "NAME@VERSION" in out["bad"][1]
    assert out["dry"] == [True, 3]
    assert out["by_kind"] == {"deps": 1, "actions": 2} and out["apps"] == ["acme/blog", "acme/shop"]
    assert out["after"] == 0
    with Client(daemon.address, token=ADMIN_TOKEN) as client:
        assert client.build(files=tiny_app(WRITE_DIST), app="plain", tenant="bars").cache == "hit"


def test_the_next_deps_lookup_after_a_package_purge_says_purged(make_daemon: Callable[..., DaemonProcess], tmp_path: Path) -> None:
    daemon = _daemon(make_daemon, tmp_path)
    with Client(daemon.address, token=ADMIN_TOKEN) as client:
        client.build(files=dev_tool_app(), app="shop", tenant="acme")
        client.purge_package("devtool@1.0.0")
        again = client.build(files=dev_tool_app(), app="shop", tenant="acme")
    assert (again.decision("deps").result, again.decision("deps").reason) == ("miss", "purged")


_ = grpc  # status codes are read through the client's exceptions
