"""Files over the 25 MiB asset limit: R2 through boto3 against moto's S3 server, and Miniflare's local R2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from apps import spa_app
from cf_api import FakeCloudflare
from conftest import S3Server
from rpc import build, deploy, options, outputs
from support import DaemonProcess

from cached.deploy.local import MiniflareServer
from cached.deploy.names import script_name

BIG = "media/big.bin"


def test_large_file_is_put_in_r2_once_and_served_from_local_r2_with_exact_bytes(
    deploy_daemon: DaemonProcess, cf: FakeCloudflare, s3: S3Server, miniflare_tools: Path,
) -> None:
    tenant, app = "t3", "big"
    name = script_name(tenant, app)
    built = build(deploy_daemon.address, spa_app(js="big();\n"), tenant=tenant, app=app, env={"BIG_MIB": "26"}, deploy=options())
    d = built.deploy
    assert d is not None and d.error == "", d
    assert d.large_files == 1 and d.large_files_uploaded == 1 and d.assets_total == 4
    digest = next(o.digest for o in built.result.outputs if o.path == BIG)
    assert digest.size > 25 << 20
    key = f"{name}/{digest.hash}"
    client = s3.client()
    stored = client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
    assert stored == outputs(deploy_daemon.address, tenant, built.result)[BIG]

    version = cf.scripts[name].versions[-1]
    assert {"type": "r2_bucket", "name": "LARGE_FILES", "bucket_name": s3.bucket} in version["metadata"]["bindings"]
    large = json.loads(re.search(r"^const LARGE = (.*);$", version["modules"]["worker.mjs"], re.M)[1])
    assert large["/" + BIG]["key"] == key and large["/" + BIG]["size"] == digest.size

    # Not sent again: an object under the content's key is taken as that content (a HEAD, no PUT).
    client.put_object(Bucket=s3.bucket, Key=key, Body=b"left alone")
    again = deploy(deploy_daemon.address, tenant=tenant, app=app, action_key=built.result.action_key).result
    assert again.large_files == 1 and again.large_files_uploaded == 0
    assert client.get_object(Bucket=s3.bucket, Key=key)["Body"].read() == b"left alone"
    client.put_object(Bucket=s3.bucket, Key=key, Body=stored)

    local = deploy(deploy_daemon.address, tenant=tenant, app=app, action_key=built.result.action_key, opts=options("local", production=True)).result
    bundle = Path(local.bundle_dir)
    assert (bundle / "r2" / key).stat().st_size == digest.size
    assert not (bundle / "assets" / BIG).exists()
    with MiniflareServer(bundle, tools=miniflare_tools) as mf, httpx.Client(base_url=mf.url, trust_env=False, timeout=60) as http:
        r = http.get("/" + BIG)
        assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
        assert r.content == stored
    assert cf.violations == []
