"""The `cached` command against a running daemon."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from support import WRITE_DIST, DaemonProcess, tiny_app

REPO = Path(__file__).resolve().parents[1]
CLI = REPO / "cached" / "cli"
CLI_MODULES = sorted("cached.cli" if f.stem == "__init__" else f"cached.cli.{f.stem}" for f in CLI.glob("*.py"))
# What a cold `cached build` must never load: the server, the store and LMDB, the deployer's clients, the watcher.
HEAVY = ("lmdb", "boto3", "botocore", "httpx", "watchfiles", "prometheus_client", "grpc_health.v1", "grpc_reflection.v1alpha",
         "cached.server", "cached.store", "cached.pipeline", "cached.deploy.cloudflare", "cached.deploy.deployer",
         "cached.warm", "cached.sandbox", "cached.watch")
# And what it does not need either, though declaring every command (`cached --help`) may load it: the other command
# groups and what they import at the top (asyncio settings, size parsing, the shared tier), admin.proto's descriptors
# and stubs, the hash libraries (files up to 1 MiB travel inline, so a hit hashes nothing in the client).
NOT_FOR_A_BUILD = (*HEAVY, "cached.cli.serve", "cached.cli.operate", "cached.cli.deploy", "cached.cli.watch", "cached.cli.keygen",
                   "cached.operate", "cached.remote", "cached.request", "cached.execution", "cached.deps", "cached.packages",
                   "cached.v1.admin_pb2", "cached.v1.operate_pb2", "cached.v1.deploy_pb2", "cached.v1.records_pb2",
                   "cached.v1.remote_pb2", "cached.v1.store_pb2", "blake3", "xxhash", "cryptography")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cached", *args], capture_output=True, text=True, timeout=300)


def write_app(root: Path, files: dict[str, bytes]) -> Path:
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return root


def test_build_json_reports_the_decision_and_writes_outputs(daemon: DaemonProcess, tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", tiny_app(WRITE_DIST, extra={"src/cli.txt": b"cli"}))
    (app / "node_modules" / "junk").mkdir(parents=True)
    (app / "node_modules" / "junk" / "index.js").write_text("not sent")
    (app / "dist").mkdir()
    (app / "dist" / "stale.html").write_text("not sent")
    first = run_cli("build", str(app), "--app", "cli", "--tenant", "t1", "--server", daemon.address, "--json", "--env", "GREETING=cli")
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["cache"] == "miss" and data["reason"] == "new_app"
    assert {"action_key", "duration_ms", "decisions", "phases", "output_files"} <= data.keys()
    assert [f["path"] for f in data["output_files"]] == ["index.html"]
    assert "build" in data["phases"] and "dependencies" in data["phases"]

    out = tmp_path / "out"
    second = run_cli("build", str(app), "--app", "cli", "--tenant", "t1", "--server", daemon.address, "--json", "--env", "GREETING=cli", "--out", str(out))
    assert second.returncode == 0, second.stderr
    data = json.loads(second.stdout)
    assert data["cache"] == "hit" and data["action_key"] == json.loads(first.stdout)["action_key"]
    assert data["output_dir"] == str(out.resolve())
    assert (out / "index.html").read_text() == "<h1>cli</h1>\n"
    assert data["decisions"] == [{"layer": "action", "result": "hit", "tier": "local", "reason": "hit", "detail": "identical inputs were built before"}]


def test_build_failure_exits_non_zero_with_the_error(daemon: DaemonProcess, tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", tiny_app("console.error('kaboom in build'); process.exit(2)"))
    done = run_cli("build", str(app), "--app", "cli-broken", "--tenant", "t1", "--server", daemon.address)
    assert done.returncode != 0
    assert "FAILED_PRECONDITION" in done.stderr and "kaboom in build" in done.stderr


def test_stats_json(daemon: DaemonProcess, tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", tiny_app(WRITE_DIST, extra={"src/stats.txt": b"s"}))
    assert run_cli("build", str(app), "--app", "stats-app", "--tenant", "t1", "--server", daemon.address, "--quiet").returncode == 0
    done = run_cli("stats", "--server", daemon.address, "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["blobs"] > 0 and data["bytes"] > 0 and data["actions"] >= 1
    assert any(a["tenant"] == "t1" and a["app"] == "stats-app" for a in data["per_app"])
    assert not any(a["app"].startswith(".") for a in data["per_app"])  # internal apps (shadow checks) are never listed
    assert data["shadow"].keys() == {"builds", "bytes", "entries"}
    assert all(t["shadow"].keys() == {"builds", "bytes", "entries"} for t in data["per_tenant"])


def test_second_daemon_on_the_same_root_refuses_with_a_clear_message(daemon: DaemonProcess) -> None:
    done = run_cli("serve", "--root", str(daemon.root), "--listen", "127.0.0.1:0")
    assert done.returncode == 2
    assert str(daemon.root) in done.stderr


def test_a_non_cryptographic_digest_is_refused_unless_one_tenant_is_served(daemon: DaemonProcess, make_daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from cached_client import CachedError, Client

    refused = run_cli("serve", "--root", str(tmp_path / "x"), "--listen", "127.0.0.1:0", "--digest", "xxh3_128")
    assert refused.returncode == 2 and "collision-resistant" in refused.stderr and "--single-tenant" in refused.stderr
    single = make_daemon(args=["--digest", "xxh3_128", "--single-tenant", "solo"])
    with Client(single.address, digest_function="xxh3_128") as client:
        built = client.build(files=tiny_app(WRITE_DIST, extra={"src/x.txt": b"x"}), app="a", tenant="solo")
        assert built.outputs[0].digest.startswith("xxh3_128:")
        try:
            client.build(files=tiny_app(WRITE_DIST), app="a", tenant="other")
            raise AssertionError("another tenant was served")
        except CachedError as e:
            assert e.code.name == "INVALID_ARGUMENT" and "solo" in e.details


def _imports(path: Path, package: str) -> set[str]:
    """Every module a file imports, at the top or inside a function (``from a import b`` counts b when it is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def test_the_cli_modules_import_one_way_and_nothing_else_imports_them() -> None:
    graph = {}
    for module in CLI_MODULES:
        path = CLI / ("__init__.py" if module == "cached.cli" else module.rsplit(".", 1)[1] + ".py")
        graph[module] = {m for m in _imports(path, "cached.cli") if m in CLI_MODULES and m != module}
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", f"import cycle: {' -> '.join(trail + [module])}"
        state[module] = "open"
        for target in sorted(graph[module]):
            visit(target, trail + [module])
        state[module] = "done"

    for module in CLI_MODULES:
        visit(module, [])
    assert graph["cached.cli.options"] == set(), "options is the leaf every command group may use"
    for path in (REPO / "cached").rglob("*.py"):
        if CLI in path.parents or path.name == "__main__.py":
            continue
        package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
        assert not any(m == "cached.cli" or m.startswith("cached.cli.") for m in _imports(path, package)), f"{path} imports the command line"


@pytest.mark.parametrize("module", CLI_MODULES)
def test_each_cli_module_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def _loaded_heavy(code: str, names: tuple[str, ...] = HEAVY) -> list[str]:
    """The modules starting with one of ``names`` that running ``code`` in a fresh interpreter loaded."""
    probe = ("import atexit, json, sys\n"
             f"atexit.register(lambda: print(json.dumps(sorted(m for m in sys.modules if m.startswith({names!r})))))\n")
    done = subprocess.run([sys.executable, "-c", probe + code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_declaring_every_command_loads_no_grpc_store_or_http_client() -> None:
    assert _loaded_heavy("from cached.cli import build_parser\nbuild_parser()") == []
    assert _loaded_heavy("from cached.cli import main\nmain(['build', '--help'])") == []


def test_a_build_from_a_cold_shell_loads_neither_the_server_nor_the_store(daemon: DaemonProcess, tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", tiny_app(WRITE_DIST, extra={"src/cold.txt": b"cold"}))
    argv = ["build", str(app), "--app", "cold", "--tenant", "t1", "--server", daemon.address, "--quiet"]
    assert _loaded_heavy(f"from cached.cli import main\nsys.exit(main({argv!r}))", NOT_FOR_A_BUILD) == []
    # the hit, as a cold shell runs it: --out, --json
    hit = [*argv, "--json", "--out", str(tmp_path / "out")]
    assert _loaded_heavy(f"from cached.cli import main\nsys.exit(main({hit!r}))", (*NOT_FOR_A_BUILD, "cached.progress")) == []
    assert (tmp_path / "out" / "index.html").exists()


def test_the_command_table_names_what_each_group_declares() -> None:
    import argparse

    from cached.cli import COMMAND_GROUPS, GROUPS, build_parser

    for group, commands in GROUPS.items():
        sub = argparse.ArgumentParser().add_subparsers()
        __import__(f"cached.cli.{group}", fromlist=["add_commands"]).add_commands(sub)
        assert tuple(sub.choices) == commands, group
    full = build_parser()
    choices = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert list(choices) == list(COMMAND_GROUPS)  # the help lists every command, in the table's order
    assert sorted(f.stem for f in CLI.glob("*.py") if f.stem not in ("__init__", "options")) == sorted(GROUPS)


@pytest.mark.parametrize("command", ["build", "stats", "deploy", "serve"])
def test_a_command_parses_the_same_with_its_group_alone_and_imports_no_other(command: str) -> None:
    from cached.cli import COMMAND_GROUPS, GROUPS, build_parser

    argv = {"build": ["build", "d", "--app", "t/a", "--out", "o", "--json", "--env", "A=1"], "stats": ["stats", "--json"],
            "deploy": ["deploy", "--app", "t/a", "--production"], "serve": ["serve", "--root", "r"]}[command]
    alone, full = build_parser(command).parse_args(argv), build_parser().parse_args(argv)
    assert vars(alone) == vars(full)
    others = tuple(f"cached.cli.{g}" for g in GROUPS if g != COMMAND_GROUPS[command])
    assert _loaded_heavy(f"from cached.cli import parse_args\nparse_args({argv!r})", others) == []


def test_help_lists_every_command_and_an_unknown_one_is_answered_with_all() -> None:
    from cached.cli import COMMAND_GROUPS

    shown = run_cli("--help")
    assert shown.returncode == 0 and all(c in shown.stdout for c in COMMAND_GROUPS)
    unknown = run_cli("bulid")
    assert unknown.returncode == 2 and "invalid choice: 'bulid'" in unknown.stderr and all(repr(c) in unknown.stderr for c in COMMAND_GROUPS)


APP_COMMANDS = [["build", "dir"], ["watch", "dir"], ["deploy"], ["rollback"], ["purge"], ["explain"]]


@pytest.mark.parametrize("command", APP_COMMANDS, ids=lambda c: c[0])
def test_every_command_names_an_app_with_tenant_and_app_or_the_shorthand(command: list[str]) -> None:
    from cached.cli import parse_args

    for names in (["--tenant", "bars", "--app", "w1"], ["--app", "bars/w1"], ["--app", "bars/w1", "--tenant", "bars"]):
        args = parse_args([*command, *names])
        assert (args.tenant, args.app) == ("bars", "w1"), names


@pytest.mark.parametrize("command", APP_COMMANDS, ids=lambda c: c[0])
def test_a_tenant_that_contradicts_the_shorthand_is_a_usage_error_naming_both(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from cached.cli import parse_args

    with pytest.raises(SystemExit) as exited:
        parse_args([*command, "--tenant", "x", "--app", "y/z"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--tenant x" in err and "--app y/z" in err
    with pytest.raises(SystemExit):
        parse_args([*command, "--app", "z"])  # an app without its tenant
    assert "needs its tenant" in capsys.readouterr().err


def test_purge_by_tenant_alone_still_purges_the_tenant_and_takes_one_selector(capsys: pytest.CaptureFixture[str]) -> None:
    from cached.cli import parse_args
    from cached.cli.operate import cmd_purge

    args = parse_args(["purge", "--tenant", "bars"])
    assert (args.tenant, args.app) == ("bars", "")
    assert cmd_purge(parse_args(["purge", "--tenant", "bars", "--all"])) == 2
    assert cmd_purge(parse_args(["purge"])) == 2
    assert "one of --tenant" in capsys.readouterr().err


def test_purge_by_tenant_and_app_against_the_daemon(daemon: DaemonProcess, tmp_path: Path) -> None:
    from cached_client import Client

    app = write_app(tmp_path / "app", tiny_app(WRITE_DIST, extra={"src/names.txt": b"n"}))
    assert run_cli("build", str(app), "--app", "t1/names", "--server", daemon.address, "--quiet").returncode == 0
    done = run_cli("purge", "--tenant", "t1", "--app", "names", "--server", daemon.address, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["entries"] >= 1
    again = run_cli("build", str(app), "--tenant", "t1", "--app", "names", "--server", daemon.address, "--json")
    assert json.loads(again.stdout)["reason"] == "purged"
    with Client(daemon.address) as client:  # the client takes the same two names
        assert client.purge(tenant="t1", app="names", dry_run=True).dry_run
