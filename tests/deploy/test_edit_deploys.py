"""Edit to live: what a one-file edit and a Worker-only change send to Cloudflare, and a local server that
takes each new deploy without a restart of Miniflare.

Against the API stand-in (every request checked, 127.0.0.1): an edit uploads only the hashes of the files
that changed, in the buckets the session asked for; a change of the Worker alone (same assets) sends
``keep_assets`` and opens no upload session; a version uploaded by someone else in between makes the next
deploy send its manifest again rather than keep assets that are not its own."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import httpx

from apps import spa_app
from cf_api import BUCKET_SIZE, FakeCloudflare, reference_hash
from inproc import DictBlobs, deployer, record
from rpc import build, deploy, options, outputs
from support import DaemonProcess

from cached.deploy.local import MiniflareServer
from cached.deploy.names import script_name
from cached.v1 import cached_pb2

BASE = {
    "index.html": b'<!doctype html><script type="module" src="/assets/index-aaaa.js"></script>\n',
    "assets/index-aaaa.js": b"console.log('one');\n",
    "assets/vendor-bbbb.js": b"export const vendor = 1;\n",
    "assets/index-cccc.css": b"body{color:#123}\n",
    "favicon.svg": b'<svg xmlns="http://www.w3.org/2000/svg"/>\n',
}


def _edited(app: str) -> dict[str, bytes]:
    """One source file changed, as Vite writes it: the entry chunk renamed, index.html pointing at it."""
    files = {p: c for p, c in _files(app).items() if p not in ("assets/index-aaaa.js", "index.html")}
    files["assets/index-dddd.js"] = f"console.log('two {app}');\n".encode()
    files["index.html"] = f'<!doctype html><!-- {app} --><script type="module" src="/assets/index-dddd.js"></script>\n'.encode()
    return files


def _files(app: str) -> dict[str, bytes]:
    return {p: c + f"/* {app} */\n".encode() if not p.endswith(".html") else c.replace(b"<script", f"<!-- {app} --><script".encode())
            for p, c in BASE.items()}


def _hashes(files: dict[str, bytes]) -> set[str]:
    return {reference_hash(b, p) for p, b in files.items()}


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_an_edit_uploads_only_the_changed_hashes_and_a_worker_only_change_keeps_the_assets(cf: FakeCloudflare, tmp_path: Path) -> None:
    tenant, app = "edits", "one_file"
    name = script_name(tenant, app)
    first, second = _files(app), _edited(app)

    async def scenario() -> list[cached_pb2.DeployResult]:
        blobs = DictBlobs()
        d = deployer(cf.base_url, cf.account_id, cf.token, tmp_path, blobs)
        results = []
        try:
            cf.expected_files[name] = first
            results.append(await d.deploy(record(blobs, first), tenant=tenant, app=app, action_key="blake3:" + "1" * 64, options=options(production=True)))
            marks.append(cf.mark())
            cf.expected_files[name] = second
            results.append(await d.deploy(record(blobs, second), tenant=tenant, app=app, action_key="blake3:" + "2" * 64, options=options(production=True)))
            marks.append(cf.mark())
            results.append(await d.deploy(record(blobs, second), tenant=tenant, app=app, action_key="blake3:" + "2" * 64,
                                          options=options(production=True, vars={"GREETING": "hello"})))
            marks.append(cf.mark())
        finally:
            await d.close()
        return results

    marks = [cf.mark()]
    d1, d2, d3 = _run(scenario())
    assert cf.violations == []
    assert sorted(cf.uploaded_since(marks[0])[:len(first)]) == sorted(_hashes(first)) and d1.assets_uploaded == len(first)

    # The edit: only the renamed chunk and the rewritten index.html, in as many buckets as the session asked for.
    edit_calls = cf.calls_since(marks[1])[:len(cf.calls_since(marks[1])) - len(cf.calls_since(marks[2]))]
    sent = cf.uploaded_since(marks[1])[:len(cf.uploaded_since(marks[1])) - len(cf.uploaded_since(marks[2]))]
    changed = _hashes(second) - _hashes(first)
    assert sorted(sent) == sorted(changed) and len(changed) == 2 and d2.assets_uploaded == 2
    uploads = [c for c in edit_calls if c.path.endswith("/assets/upload")]
    assert len(uploads) == math.ceil(len(changed) / BUCKET_SIZE)
    assert [c.path.rsplit("/", 1)[-1] for c in edit_calls if c.method == "POST"] == ["assets-upload-session", "upload", "versions", "deployments"]
    assert not [c for c in edit_calls if c.method == "GET"]  # the worker is known to exist: not looked up again

    # The Worker alone changed (vars): keep_assets, no upload session, no upload; the version serves the same assets.
    worker_calls = cf.calls_since(marks[2])
    assert [f"{c.method} {c.path.rsplit('/', 1)[-1]}" for c in worker_calls] == ["POST versions", "POST deployments"]
    assert cf.uploaded_since(marks[2]) == [] and d3.assets_uploaded == 0
    script = cf.scripts[name]
    latest, before = script.versions[-1], script.versions[-2]
    assert latest["metadata"]["keep_assets"] is True and "jwt" not in latest["metadata"]["assets"]
    assert latest["metadata"]["assets"]["config"]["not_found_handling"] == "single-page-application"
    assert latest["assets"] == before["assets"] == {"/" + p: reference_hash(b, p) for p, b in second.items()}
    assert {b["name"]: b for b in latest["metadata"]["bindings"]}["GREETING"]["text"] == "hello"
    assert script.live == d3.version_id


def test_a_version_uploaded_by_someone_else_in_between_makes_the_next_deploy_send_its_manifest(cf: FakeCloudflare, tmp_path: Path) -> None:
    tenant, app = "edits", "two_daemons"
    name = script_name(tenant, app)
    mine, theirs = _files(app), _edited(app)

    async def scenario() -> cached_pb2.DeployResult:
        blobs_a, blobs_b = DictBlobs(), DictBlobs()
        a = deployer(cf.base_url, cf.account_id, cf.token, tmp_path / "a", blobs_a)
        b = deployer(cf.base_url, cf.account_id, cf.token, tmp_path / "b", blobs_b)
        try:
            await a.deploy(record(blobs_a, mine), tenant=tenant, app=app, action_key="blake3:" + "3" * 64, options=options(production=True))
            await b.deploy(record(blobs_b, theirs), tenant=tenant, app=app, action_key="blake3:" + "4" * 64, options=options(production=True))
            marks.append(cf.mark())
            # Daemon a's last upload had these assets, but the latest version is b's: keeping assets would keep b's.
            return await a.deploy(record(blobs_a, mine), tenant=tenant, app=app, action_key="blake3:" + "3" * 64,
                                  options=options(production=True, vars={"AGAIN": "1"}))
        finally:
            await a.close()
            await b.close()

    marks: list[tuple[int, int]] = []
    result = _run(scenario())
    assert cf.violations == []
    script = cf.scripts[name]
    assert script.live == result.version_id
    live = next(v for v in script.versions if v["id"] == result.version_id)
    assert "keep_assets" not in live["metadata"] and live["assets"] == {"/" + p: reference_hash(c, p) for p, c in mine.items()}
    assert [c.path.rsplit("/", 1)[-1] for c in cf.calls_since(marks[0]) if c.path.endswith("/assets-upload-session")] == ["assets-upload-session"]
    assert cf.uploaded_since(marks[0]) == []  # the account held every hash already


def test_a_promotion_through_the_daemon_keeps_the_assets_and_opens_no_upload_session(deploy_daemon: DaemonProcess, cf: FakeCloudflare) -> None:
    tenant, app = "t1", "keep_promote"
    name = script_name(tenant, app)
    built = build(deploy_daemon.address, spa_app(js="console.log('keep');\n"), tenant=tenant, app=app, deploy=options())
    assert built.deploy is not None and built.deploy.error == "", built.deploy
    cf.expected_files[name] = outputs(deploy_daemon.address, tenant, built.result)
    mark = cf.mark()
    promoted = deploy(deploy_daemon.address, tenant=tenant, app=app, opts=options(production=True, vars={"STAGE": "prod"})).result
    assert promoted.error == "" and promoted.assets_uploaded == 0
    calls = cf.calls_since(mark)
    assert not [c for c in calls if c.path.endswith(("/assets-upload-session", "/assets/upload"))]
    version = cf.scripts[name].versions[-1]
    assert version["id"] == promoted.version_id and version["metadata"]["keep_assets"] is True
    assert cf.scripts[name].live == promoted.version_id
    assert cf.violations == []


def _get(url: str, path: str) -> httpx.Response:
    with httpx.Client(base_url=url, trust_env=False, timeout=10) as http:
        return http.get(path)


def test_a_server_following_current_serves_each_new_deploy_on_the_same_port_without_a_restart(deploy_daemon: DaemonProcess, miniflare_tools: Path) -> None:
    tenant, app = "t1", "local_follow"
    one = build(deploy_daemon.address, spa_app(js="follow_one();\n"), tenant=tenant, app=app, deploy=options("local", production=True))
    assert one.deploy is not None and one.deploy.error == "", one.deploy
    current = Path(one.deploy.bundle_dir).parent / "current"
    with MiniflareServer(current, tools=miniflare_tools, follow=True) as mf:
        url, pid = mf.url, mf.proc.pid if mf.proc else 0
        assert _get(url, "/__cached/health").json()["version"] == one.deploy.sequence
        two = build(deploy_daemon.address, spa_app(js="follow_two();\n"), tenant=tenant, app=app, deploy=options("local", production=True))
        assert two.deploy is not None and two.deploy.error == "", two.deploy
        assert mf.wait_served(Path(two.deploy.bundle_dir), timeout_s=60), list(mf.output)
        assert mf.url == url and mf.proc is not None and mf.proc.pid == pid and mf.reloads == 1
        files = outputs(deploy_daemon.address, tenant, two.result)
        deadline = time.monotonic() + 30  # the reload is reported once served; a request may still race workerd's start
        while True:
            try:
                home = _get(url, "/")
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the reloaded server never answered"
                time.sleep(0.05)
        assert home.content == files["index.html"]
        js = next(p for p in files if p.endswith(".js"))
        assert _get(url, "/" + js).content == b"follow_two();\n"
        assert _get(url, "/__cached/health").json()["version"] == two.deploy.sequence

        # An explicit reload of an earlier bundle (what a rollback's server does), on the same port again.
        assert mf.reload(Path(one.deploy.bundle_dir), timeout_s=60) == url
        assert _get(url, "/__cached/health").json()["version"] == one.deploy.sequence
        assert mf.proc.pid == pid and mf.reloads == 2


def test_a_worker_deleted_since_it_was_last_seen_is_created_again(cf: FakeCloudflare, tmp_path: Path) -> None:
    tenant, app = "edits", "deleted"
    name = script_name(tenant, app)
    files = _files(app)

    async def scenario() -> cached_pb2.DeployResult:
        blobs = DictBlobs()
        d = deployer(cf.base_url, cf.account_id, cf.token, tmp_path, blobs)
        try:
            await d.deploy(record(blobs, files), tenant=tenant, app=app, action_key="blake3:" + "5" * 64, options=options(production=True))
            with cf.lock:
                del cf.scripts[name]  # deleted in the dashboard, say
            marks.append(cf.mark())
            return await d.deploy(record(blobs, files), tenant=tenant, app=app, action_key="blake3:" + "5" * 64,
                                  options=options(production=True, vars={"AFTER": "delete"}))
        finally:
            await d.close()

    marks: list[tuple[int, int]] = []
    result = _run(scenario())
    assert cf.violations == []
    script = cf.scripts[name]
    assert script.live == result.version_id
    assert any(c.method == "PUT" for c in cf.calls_since(marks[0]))  # created again, with its placeholder
    live = next(v for v in script.versions if v["id"] == result.version_id)
    assert "keep_assets" not in live["metadata"] and live["assets"] == {"/" + p: reference_hash(c, p) for p, c in files.items()}
