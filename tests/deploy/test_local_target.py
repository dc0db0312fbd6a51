"""The local target: the bundle the daemon writes, served by Miniflare (workerd) on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import httpx

from apps import HEADERS_TEXT, spa_app
from rpc import build, options, outputs, rollback
from support import DaemonProcess

from cached.deploy.local import MiniflareServer
from cached.deploy.names import script_name


def _type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


def test_miniflare_serves_html_assets_health_config_and_spa_fallback(deploy_daemon: DaemonProcess, miniflare_tools: Path) -> None:
    tenant, app = "t1", "local_spa"
    built = build(deploy_daemon.address, spa_app(), tenant=tenant, app=app,
                  deploy=options("local", production=True, vars={"API_BASE": "/api"}, secrets={"TOKEN": "s3cr3t-value-do-not-log"}))
    d = built.deploy
    assert d is not None and d.error == "", d
    files = outputs(deploy_daemon.address, tenant, built.result)
    bundle = Path(d.bundle_dir)
    assert {p.name for p in bundle.iterdir()} >= {"worker.mjs", "wrangler.json", "assets", ".dev.vars"}
    assert (bundle / ".dev.vars").stat().st_mode & 0o077 == 0
    with MiniflareServer(bundle, tools=miniflare_tools) as mf, httpx.Client(base_url=mf.url, trust_env=False) as http:
        home = http.get("/")
        assert home.status_code == 200 and _type(home) == "text/html" and home.content == files["index.html"]
        checked = 0
        for path, data in files.items():
            if path.endswith((".js", ".css")):
                r = http.get("/" + path)
                assert r.status_code == 200 and r.content == data, path
                assert _type(r) in (("text/javascript", "application/javascript") if path.endswith(".js") else ("text/css",)), r.headers
                checked += 1
        assert checked == 2
        health = http.get("/__cached/health")
        assert health.status_code == 200 and _type(health) == "application/json"
        h = health.json()
        assert h["app"] == app and h["tenant"] == tenant and h["version"] == d.sequence == 1
        assert h["action_key"] == built.result.action_key and h["build_time"].endswith("Z")
        assert http.get("/__cached/config").json() == {"API_BASE": "/api"}
        route = http.get("/settings/profile", headers={"accept": "text/html"})
        assert route.status_code == 200 and _type(route) == "text/html" and route.content == files["index.html"]


def test_rollback_restores_the_previous_versions_content(deploy_daemon: DaemonProcess, miniflare_tools: Path) -> None:
    tenant, app = "t1", "local_roll"
    one = build(deploy_daemon.address, spa_app(js="one();\n"), tenant=tenant, app=app, deploy=options("local", production=True))
    two = build(deploy_daemon.address, spa_app(js="two();\n"), tenant=tenant, app=app, deploy=options("local", production=True))
    assert one.deploy and two.deploy and not one.deploy.error and not two.deploy.error
    current = Path(two.deploy.bundle_dir).parent / "current"
    assert current.resolve() == Path(two.deploy.bundle_dir)
    index_one = outputs(deploy_daemon.address, tenant, one.result)["index.html"]
    back = rollback(deploy_daemon.address, tenant=tenant, app=app, target="local").result
    assert back.rolled_back and back.sequence == 1 and current.resolve() == Path(one.deploy.bundle_dir)
    with MiniflareServer(current, tools=miniflare_tools) as mf, httpx.Client(base_url=mf.url, trust_env=False) as http:
        assert http.get("/").content == index_one
        assert http.get("/__cached/health").json()["version"] == 1
        js = next(p for p in outputs(deploy_daemon.address, tenant, one.result) if p.endswith(".js"))
        assert http.get("/" + js).content == b"one();\n"
    assert script_name(tenant, app) == current.parent.name


def test_headers_and_redirects_of_the_build_are_honoured_by_miniflare(deploy_daemon: DaemonProcess, miniflare_tools: Path) -> None:
    tenant, app = "t1", "local_rules"
    built = build(deploy_daemon.address, spa_app(js="rules();\n"), tenant=tenant, app=app, env={"EDGE_RULES": "1"},
                  deploy=options("local", production=True))
    d = built.deploy
    assert d is not None and d.error == "", d
    files = outputs(deploy_daemon.address, tenant, built.result)
    assert (Path(d.bundle_dir) / "assets" / "_headers").read_bytes() == files["_headers"] == HEADERS_TEXT.encode()
    js = next(p for p in files if p.endswith(".js"))
    with MiniflareServer(Path(d.bundle_dir), tools=miniflare_tools) as mf, httpx.Client(base_url=mf.url, trust_env=False) as http:
        asset = http.get("/" + js)
        assert asset.status_code == 200 and asset.content == b"rules();\n" and asset.headers["x-cached-rule"] == "assets"
        assert "x-cached-rule" not in http.get("/").headers  # the rule is for /assets/* only
        old = http.get("/old")
        assert old.status_code == 301 and old.headers["location"].endswith("/new"), old.headers
        docs = http.get("/docs/intro")
        assert docs.status_code == 302 and docs.headers["location"].endswith("/guide/intro"), docs.headers
        for rule_file in ("_headers", "_redirects"):  # read by the runtime, never served as files
            r = http.get("/" + rule_file)
            assert files[rule_file] not in r.content, rule_file
        health = http.get("/__cached/health")
        assert health.status_code == 200 and health.json()["app"] == app
