"""Deploy fixtures: the fake Cloudflare API, moto's S3 server, Miniflare, and a daemon wired to them.

Everything listens on 127.0.0.1 in this test process (the API stand-in, moto)
or in children it starts (the daemon, Miniflare).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cf_api import FakeCloudflare
from deploy_support import R2_BUCKET, R2_KEY, R2_SECRET, S3Server
from support import DaemonProcess


@pytest.fixture(scope="session")
def cf() -> Iterator[FakeCloudflare]:
    server = FakeCloudflare().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s = S3Server(f"http://{host}:{port}", R2_BUCKET)
    s.client("us-east-1").create_bucket(Bucket=R2_BUCKET)  # moto refuses region "auto" for CreateBucket
    yield s
    server.stop()


@pytest.fixture(scope="session")
def deploy_daemon(tmp_path_factory: pytest.TempPathFactory, npm_cache: Path, cf: FakeCloudflare, s3: S3Server) -> Iterator[DaemonProcess]:
    """A daemon whose Cloudflare target is the stand-in and whose R2 is moto; fast retries."""
    base = tmp_path_factory.mktemp("deploy")
    token_file = base / "cf-token"
    token_file.write_text(cf.token + "\n")
    creds = base / "r2-creds"
    creds.write_text(f"{R2_KEY}:{R2_SECRET}\n")
    args = [
        "--cloudflare-api-base", cf.base_url, "--cloudflare-account-id", cf.account_id, "--cloudflare-token-file", str(token_file),
        "--cloudflare-retry-base", "0.01", "--cloudflare-retry-attempts", "3",
        "--r2-endpoint", s3.endpoint, "--r2-bucket", s3.bucket, "--r2-credentials-file", str(creds),
        "--deploy-dir", str(base / "bundles"),
    ]
    env = {"CLOUDFLARE_API_TOKEN": "", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    proc = DaemonProcess(base / "root", npm_cache, args=args, env=env).start()
    yield proc
    proc.stop()
    log = proc.log()
    assert cf.token not in log, "the daemon logged the Cloudflare API token"
    assert R2_SECRET not in log, "the daemon logged the R2 secret"
    assert os.environ.get("CACHED_TEST_SECRET_MARKER", "s3cr3t-value-do-not-log") not in log, "the daemon logged a secret"
