"""Files over the 25 MiB asset limit: R2 through boto3 against moto's S3 server, and Miniflare's local R2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from apps import spa_app
from cf_api import FakeCloudflare
from deploy_support import S3Server
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


def test_range_requests_on_a_file_served_from_r2(deploy_daemon: DaemonProcess, miniflare_tools: Path) -> None:
    tenant, app = "t3", "big_ranges"
    built = build(deploy_daemon.address, spa_app(js="ranges();\n"), tenant=tenant, app=app, env={"BIG_MIB": "26", "EDGE_RULES": "1"},
                  deploy=options("local", production=True))
    d = built.deploy
    assert d is not None and d.error == "" and d.large_files == 1, d
    data = outputs(deploy_daemon.address, tenant, built.result)[BIG]
    size = len(data)
    assert size > 25 << 20
    with MiniflareServer(Path(d.bundle_dir), tools=miniflare_tools) as mf, httpx.Client(base_url=mf.url, trust_env=False, timeout=60) as http:
        cases = {"bytes=0-99": (0, 99), f"bytes={size - 5000}-": (size - 5000, size - 1), "bytes=-4096": (size - 4096, size - 1),
                 "bytes=123456-123456": (123456, 123456), f"bytes=26000000-{size + 10}": (26000000, size - 1)}
        for header, (first, last) in cases.items():
            r = http.get("/" + BIG, headers={"range": header})
            assert r.status_code == 206, (header, r.status_code, r.text[:200])
            assert r.headers["content-range"] == f"bytes {first}-{last}/{size}", header
            assert r.headers["accept-ranges"] == "bytes" and int(r.headers["content-length"]) == last - first + 1
            assert r.content == data[first:last + 1], header
        r = http.get("/" + BIG, headers={"range": f"bytes={size}-"})
        assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{size}" and r.content == b""
        head = http.head("/" + BIG, headers={"range": "bytes=10-19"})
        assert head.status_code == 206 and head.headers["content-range"] == f"bytes 10-19/{size}" and head.content == b""
        stale = http.get("/" + BIG, headers={"range": "bytes=0-9", "if-range": '"another-version"'})
        assert stale.status_code == 200 and len(stale.content) == size  # If-Range that does not match: the whole file
        for header in ("bytes=0-1,5-6", "bytes=9-3", "items=0-1"):  # not one satisfiable byte range: ignored
            r = http.head("/" + BIG, headers={"range": header})
            assert r.status_code == 200 and int(r.headers["content-length"]) == size, header
        # The _headers rules of the build reach the files the Worker serves from R2, as they would as assets.
        assert r.headers["x-cached-rule"] == "media big.bin" and r.headers["cache-control"] == "public, max-age=60"
        assert r.headers["accept-ranges"] == "bytes"
