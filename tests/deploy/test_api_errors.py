"""API failures: each gives the documented error with Cloudflare's code, or succeeds after retries.

A deploy that fails after a build never fails or uncaches the build."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest

from apps import spa_app
from cf_api import FakeCloudflare
from inproc import DictBlobs, deployer, record
from rpc import build, options
from support import DaemonProcess

from cached.deploy.errors import DeployError
from cached.deploy.limiter import RateLimiter, RateLimiters
from cached.v1 import cached_pb2

FILES = {"index.html": b"<h1>x</h1>\n", "assets/app.js": b"console.log(1);\n", "assets/app.css": b"p{}\n"}


def _deploy(cf: FakeCloudflare, tmp_path: Path, app: str, *, token: str | None = None, attempts: int = 3, production: bool = False) -> cached_pb2.DeployResult:
    async def run() -> cached_pb2.DeployResult:
        blobs = DictBlobs()
        rec = record(blobs, {path: content + f"/* {app} */\n".encode() for path, content in FILES.items()})  # never held yet
        d = deployer(cf.base_url, cf.account_id, token or cf.token, tmp_path, blobs, attempts=attempts)
        try:
            return await d.deploy(rec, tenant="errs", app=app, action_key="blake3:" + "0" * 64, options=options(production=production))
        finally:
            await d.close()
    return asyncio.run(run())


@pytest.fixture(autouse=True)
def _no_leftover_failures(cf: FakeCloudflare):  # type: ignore[no-untyped-def]
    cf.clear_failures()
    yield
    cf.clear_failures()


def test_bad_token_is_an_authentication_error_with_code_10000(cf: FakeCloudflare, tmp_path: Path) -> None:
    with pytest.raises(DeployError) as e:
        _deploy(cf, tmp_path, "auth", token="wrong-token-0123456789")
    assert e.value.code == 10000 and e.value.status == 401
    assert "code 10000" in str(e.value) and "authentication failed" in str(e.value)
    assert "wrong-token" not in str(e.value)


def test_validation_error_10021_names_the_call_and_the_code(cf: FakeCloudflare, tmp_path: Path) -> None:
    cf.fail("POST", r"/versions$", 400, code=10021, message="Uncaught SyntaxError: Unexpected token")
    with pytest.raises(DeployError) as e:
        _deploy(cf, tmp_path, "invalid")
    assert e.value.code == 10021
    assert "POST /accounts/" in str(e.value) and "/versions" in str(e.value)
    assert "code 10021: Uncaught SyntaxError" in str(e.value) and "invalid" in str(e.value)


def test_429_then_success_honours_retry_after(cf: FakeCloudflare, tmp_path: Path) -> None:
    cf.fail("POST", r"/assets-upload-session$", 429, code=971, message="Please wait", headers={"Retry-After": "1"})
    mark = cf.mark()
    started = time.monotonic()
    result = _deploy(cf, tmp_path, "ratelimited")
    assert time.monotonic() - started >= 0.9  # waited as told, not the 10 ms backoff
    sessions = [c.status for c in cf.calls_since(mark) if c.path.endswith("/assets-upload-session")]
    assert sessions == [429, 200]
    assert result.version_id and result.assets_uploaded == 3
    assert cf.violations == []


def test_500_is_retried_with_backoff_then_succeeds(cf: FakeCloudflare, tmp_path: Path) -> None:
    cf.fail("POST", r"/workers/assets/upload$", 500, times=2)
    result = _deploy(cf, tmp_path, "flaky", attempts=3)
    assert result.version_id and result.assets_uploaded == 3
    assert cf.violations == []


def test_500_more_times_than_attempts_is_a_server_error_after_n_attempts(cf: FakeCloudflare, tmp_path: Path) -> None:
    cf.fail("POST", r"/versions$", 500, code=10013, message="An unknown error occurred", times=3)
    mark = cf.mark()
    with pytest.raises(DeployError) as e:
        _deploy(cf, tmp_path, "down", attempts=3)
    assert e.value.status == 500
    assert "server error (HTTP 500)" in str(e.value) and "failed 3 times" in str(e.value) and "code 10013" in str(e.value)
    assert [(c.method, c.status) for c in cf.calls_since(mark) if c.path.endswith("/versions")] == [
        ("POST", 500), ("GET", 200), ("POST", 500), ("GET", 200), ("POST", 500),  # each retry looks for the version first
    ]


def test_limiter_holds_calls_to_its_window() -> None:
    """On a clock of the test's own: the third call in a window of two waits for the first to leave it."""
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    async def run() -> list[float]:
        limiter = RateLimiter(limit=2, window_s=0.5, clock=lambda: now[0], sleep=sleep)
        sent = []
        for _ in range(3):
            await limiter.acquire()
            sent.append(now[0])
            now[0] += 0.125  # binary fractions: the fake clock's sums are exact
        assert limiter.waits == 1
        return sent

    sent = asyncio.run(run())
    assert slept == [0.25]  # the first call left the window 0.5 after it was made, 0.25 after the third asked
    assert sent[2] - sent[0] == 0.5


def test_limiters_are_one_per_token_within_a_set_and_never_shared_between_sets() -> None:
    daemon, other = RateLimiters(limit=7), RateLimiters()
    assert daemon.for_token("token-a") is daemon.for_token("token-a")
    assert daemon.for_token("token-a") is not daemon.for_token("token-b")
    assert daemon.for_token("token-a").limit == 7
    assert other.for_token("token-a") is not daemon.for_token("token-a")


def test_failed_deploy_does_not_fail_or_uncache_the_build(deploy_daemon: DaemonProcess, cf: FakeCloudflare) -> None:
    files = spa_app(js="console.log('deploy fails');\n")
    cf.fail("POST", r"/assets-upload-session$", 401, code=10000, message="Authentication error")
    built = build(deploy_daemon.address, files, tenant="t1", app="failing_deploy", deploy=options())
    assert built.result.cache == "miss" and built.result.action_key
    assert built.deploy is not None and "code 10000" in built.deploy.error and built.deploy.version_id == ""
    assert any("deploy failed" in line and "the build succeeded" in line for line in built.logs("deploy"))
    again = build(deploy_daemon.address, files, tenant="t1", app="failing_deploy")
    assert again.result.cache == "hit" and again.result.action_key == built.result.action_key


def test_bad_deploy_options_are_refused_before_building(deploy_daemon: DaemonProcess) -> None:
    with pytest.raises(grpc.RpcError) as e:
        build(deploy_daemon.address, spa_app(), tenant="t1", app="bad_opts", deploy=options(target="heroku"))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "heroku" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        build(deploy_daemon.address, spa_app(), tenant="t1", app="bad_opts", deploy=options(vars={"ASSETS": "x"}))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_500_after_the_version_was_created_leaves_exactly_one_version(cf: FakeCloudflare, tmp_path: Path) -> None:
    _deploy(cf, tmp_path, "dup")  # the worker exists: the next deploy uploads a version
    name = next(n for n in cf.scripts if n.endswith("dup"))
    before = len(cf.scripts[name].versions)
    cf.fail("POST", r"/versions$", 500, code=10013, message="An unknown error occurred", after=True)
    mark = cf.mark()
    result = _deploy(cf, tmp_path, "dup", production=True)
    versions = cf.scripts[name].versions
    assert len(versions) == before + 1, [v["metadata"]["annotations"] for v in versions]
    assert result.version_id == versions[-1]["id"] and cf.scripts[name].live == result.version_id
    calls = [(c.method, c.status) for c in cf.calls_since(mark) if c.path.endswith("/versions")]
    assert calls == [("POST", 500), ("GET", 200)]
    assert cf.violations == []
