"""The Cloudflare flow through the daemon, against the API stand-in that checks every request."""

from __future__ import annotations

import json
import re

from apps import HEADERS_TEXT, REDIRECTS_TEXT, spa_app
from cf_api import FakeCloudflare, reference_hash
from rpc import build, deploy, options, outputs, rollback
from support import DaemonProcess

from cached.deploy.names import script_name
from cached.v1 import cached_pb2


def _hashes(files: dict[str, bytes]) -> set[str]:
    return {reference_hash(b, p) for p, b in files.items()}


def test_first_deploy_uploads_every_asset_a_change_only_changed_hashes_and_a_redeploy_none(deploy_daemon: DaemonProcess, cf: FakeCloudflare) -> None:
    tenant, app = "t1", "flow"
    name = script_name(tenant, app)
    first_files = spa_app()
    built = build(deploy_daemon.address, first_files, tenant=tenant, app=app)
    first = outputs(deploy_daemon.address, tenant, built.result)
    cf.expected_files[name] = first
    mark = cf.mark()
    d1 = build(deploy_daemon.address, first_files, tenant=tenant, app=app, deploy=options()).deploy
    assert d1 is not None and d1.error == "", d1
    assert sorted(cf.uploaded_since(mark)) == sorted(_hashes(first))
    assert d1.assets_uploaded == d1.assets_total == len(first) == 4

    changed = build(deploy_daemon.address, spa_app(js="console.log('changed');\n"), tenant=tenant, app=app).result
    second = outputs(deploy_daemon.address, tenant, changed)
    assert set(second) != set(first)  # the JS chunk was renamed
    cf.expected_files[name] = second
    mark = cf.mark()
    d2 = deploy(deploy_daemon.address, tenant=tenant, app=app, action_key=changed.action_key).result
    sent = cf.uploaded_since(mark)
    assert sorted(sent) == sorted(_hashes(second) - _hashes(first))
    assert len(sent) == 2 and d2.assets_uploaded == 2  # the renamed chunk and the rewritten index.html

    mark = cf.mark()
    d3 = deploy(deploy_daemon.address, tenant=tenant, app=app, action_key=changed.action_key).result
    assert cf.uploaded_since(mark) == [] and d3.assets_uploaded == 0
    assert not [c for c in cf.calls_since(mark) if c.path.endswith("/assets/upload")]
    assert cf.violations == []


def test_first_preview_creates_the_worker_without_putting_the_app_live(deploy_daemon: DaemonProcess, cf: FakeCloudflare) -> None:
    tenant, app = "t1", "preview_first"
    name = script_name(tenant, app)
    built = build(deploy_daemon.address, spa_app(js="console.log('preview');\n"), tenant=tenant, app=app,
                  deploy=options(vars={"API_BASE": "https://api.example.test"}, secrets={"API_KEY": "s3cr3t-value-do-not-log"}))
    d = built.deploy
    assert d is not None and d.error == "", d
    assert d.environment == cached_pb2.PREVIEW and d.script_name == name
    assert list(d.urls) == [f"https://{d.version_id[:8]}-{name}.{cf.subdomain}.workers.dev"]
    script = cf.scripts[name]
    placeholder, version = script.versions
    assert script.live == placeholder["id"]  # only the placeholder is deployed
    assert "app" not in placeholder["modules"]["worker.mjs"].lower() or "no production version" in placeholder["modules"]["worker.mjs"]
    assert version["id"] == d.version_id
    assert script.subdomain == {"enabled": True, "previews_enabled": True}
    bindings = {b["name"]: b for b in version["metadata"]["bindings"]}
    assert bindings["API_KEY"] == {"type": "secret_text", "name": "API_KEY", "text": "s3cr3t-value-do-not-log"}
    assert bindings["API_BASE"]["type"] == "plain_text"
    assert bindings["ASSETS"]["type"] == "assets"
    module = version["modules"]["worker.mjs"]
    assert "s3cr3t-value-do-not-log" not in module
    app_json = json.loads(re.search(r"^const APP = (.*);$", module, re.M)[1])
    assert app_json["action_key"] == built.result.action_key and app_json["app"] == app and app_json["version"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", app_json["build_time"])
    kinds = built.kinds
    assert kinds.index("metrics") < kinds.index("result") < kinds.index("deploy_result")

    # Promotion: the same action, now production, without a rebuild: a deployment of a new version at 100%.
    promoted = deploy(deploy_daemon.address, tenant=tenant, app=app, opts=options(production=True)).result
    assert promoted.action_key == built.result.action_key and promoted.assets_uploaded == 0
    assert script.live == promoted.version_id
    assert promoted.urls[0] == f"https://{name}.{cf.subdomain}.workers.dev"
    assert cf.violations == []


def test_rollback_deploys_the_previous_production_version(deploy_daemon: DaemonProcess, cf: FakeCloudflare) -> None:
    tenant, app = "t2", "roll"
    name = script_name(tenant, app)
    v1 = build(deploy_daemon.address, spa_app(js="one();\n"), tenant=tenant, app=app, deploy=options(production=True)).deploy
    v2 = build(deploy_daemon.address, spa_app(js="two();\n"), tenant=tenant, app=app, deploy=options(production=True)).deploy
    assert v1 and v2 and not v1.error and not v2.error
    assert cf.scripts[name].live == v2.version_id
    back = rollback(deploy_daemon.address, tenant=tenant, app=app)
    assert back.result.rolled_back and back.result.version_id == v1.version_id and back.result.sequence == 1
    assert cf.scripts[name].live == v1.version_id
    assert [v.live for v in back.versions] == [True, False]

    cf.fail("POST", r"/deployments$", 400, code=10220, message="secrets changed")
    import grpc
    import pytest
    with pytest.raises(grpc.RpcError) as e:
        rollback(deploy_daemon.address, tenant=tenant, app=app, to=2)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "10220" in e.value.details() and "force" in e.value.details()
    forced = rollback(deploy_daemon.address, tenant=tenant, app=app, to=2, force=True)
    assert cf.scripts[name].live == v2.version_id == forced.result.version_id
    assert cf.scripts[name].deployments[-1]["force"] is True
    assert cf.violations == []


def test_headers_and_redirects_go_in_the_assets_config_and_not_in_the_upload(deploy_daemon: DaemonProcess, cf: FakeCloudflare) -> None:
    tenant, app = "t1", "edge_rules"
    name = script_name(tenant, app)
    files = spa_app(js="console.log('rules');\n")
    built = build(deploy_daemon.address, files, tenant=tenant, app=app, env={"EDGE_RULES": "1"})
    out = outputs(deploy_daemon.address, tenant, built.result)
    assert out["_headers"].decode() == HEADERS_TEXT and out["_redirects"].decode() == REDIRECTS_TEXT
    cf.expected_files[name] = out
    mark = cf.mark()
    d = deploy(deploy_daemon.address, tenant=tenant, app=app, action_key=built.result.action_key).result
    assert d.error == "" and d.assets_total == len(out) - 2
    assert reference_hash(out["_headers"], "_headers") not in cf.uploaded_since(mark)
    config = cf.scripts[name].versions[-1]["metadata"]["assets"]["config"]
    assert config == {"not_found_handling": "single-page-application", "_headers": HEADERS_TEXT, "_redirects": REDIRECTS_TEXT}
    assert cf.violations == []
