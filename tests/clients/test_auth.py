"""Bearer tokens: the interceptor, tokens bound to tenants, the token file and the rule that a daemon beyond loopback needs tokens."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from cached.server.auth import Caller, TokenChecker, Tokens, check_listen, is_loopback, load_token_file
from cached.v1 import cached_pb2, cached_pb2_grpc, deploy_pb2, deploy_pb2_grpc, tree_pb2
from cached_client import AsyncClient, Client, NotFound, PermissionDenied, Unauthenticated, digest_of
from support import WRITE_DIST, DaemonProcess, tiny_app

BUILD_TOKEN = "build-token-0123456789abcdef"      # tenants t1 and t2
OTHER_TOKEN = "other-build-token-00000000000"     # tenant t3
BACKEND_TOKEN = "backend-token-aaaaaaaaaaaaaaaa"  # every tenant
ADMIN_TOKEN = "admin-token-fedcba9876543210"


def write_token_file(path: Path) -> Path:
    path.write_text(
        f"# tokens of the test daemon\nbuild:t1:{BUILD_TOKEN}\nbuild:t2:{BUILD_TOKEN}\nbuild:t3:{OTHER_TOKEN}\n"
        f"build:*:{BACKEND_TOKEN}\n\nadmin:{ADMIN_TOKEN}\n"
    )
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, npm_cache: Path) -> Iterator[DaemonProcess]:
    """One daemon started with a token file, shared by this module's tests."""
    base = tmp_path_factory.mktemp("secured")
    proc = DaemonProcess(base / "root", npm_cache, args=["--token-file", str(write_token_file(base / "tokens"))]).start()
    yield proc
    proc.stop()


def test_calls_need_a_valid_token_and_admin_needs_the_admin_token(secured) -> None:  # type: ignore[no-untyped-def]
    files = tiny_app(WRITE_DIST, extra={"src/auth.txt": b"auth"})
    for token in (None, "wrong-token-0123456789abcdef"):
        with Client(secured.address, token=token) as client:
            with pytest.raises(Unauthenticated) as e:
                client.build(files=files, app="auth", tenant="t1")
            assert e.value.code == grpc.StatusCode.UNAUTHENTICATED and "Bearer" in e.value.details
            with pytest.raises(Unauthenticated):
                client.stats()
            with pytest.raises(Unauthenticated):  # a client-streaming call
                client.upload_missing("t1", [b"x" * 100])
            with pytest.raises(Unauthenticated):  # a server-streaming call
                client.read_blob("t1", digest_of(b"x"))
    with Client(secured.address, token=BUILD_TOKEN) as client:
        result = client.build(files=files, app="auth", tenant="t1")
        assert result.outputs
        assert client.upload_missing("t1", [b"y" * 100])
        with pytest.raises(PermissionDenied) as denied:
            client.stats()
        assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(PermissionDenied):
            client.purge(all=True, dry_run=True)
    with Client(secured.address, token=ADMIN_TOKEN) as client:
        assert client.stats().builds >= 1
        assert client.build(files=files, app="auth", tenant="t1").hit


def test_async_client_sends_the_token(secured) -> None:  # type: ignore[no-untyped-def]
    async def run() -> None:
        async with AsyncClient(secured.address) as anonymous:
            with pytest.raises(Unauthenticated):
                await anonymous.stats()
        async with AsyncClient(secured.address, token=ADMIN_TOKEN) as admin:
            assert (await admin.stats()).root

    asyncio.run(run())


def test_health_and_reflection_stay_open(secured) -> None:  # type: ignore[no-untyped-def]
    with grpc.insecure_channel(secured.address) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="")).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for r in responses for s in r.list_services_response.service}
        assert "cached.v1.Builder" in names
        # A raw stub without metadata is refused too (not only the client library's calls).
        with pytest.raises(grpc.RpcError) as e:
            cached_pb2_grpc.ContentStoreStub(channel).FindMissingBlobs(cached_pb2.FindMissingBlobsRequest(tenant="t1", digests=[tree_pb2.Digest(hash="0" * 64, size=1)]))
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "localhost:0"])
def test_a_daemon_without_tokens_refuses_to_listen_beyond_loopback(tmp_path: Path, listen: str) -> None:
    # Refused before anything binds: no traffic leaves loopback. A host name, even localhost, is refused too.
    out = subprocess.run(
        [sys.executable, "-m", "cached", "serve", "--root", str(tmp_path / "root"), "--listen", listen],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2
    assert f"refusing to listen on {listen} without tokens" in out.stderr and "--token-file" in out.stderr
    assert not (tmp_path / "root").exists()


def test_a_bad_token_file_is_refused_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "tokens"
    bad.write_text(f"build:t1:{BUILD_TOKEN}\nroot:{ADMIN_TOKEN}\n")
    out = subprocess.run(
        [sys.executable, "-m", "cached", "serve", "--root", str(tmp_path / "root"), "--listen", "127.0.0.1:0", "--token-file", str(bad)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2 and f"{bad}:2" in out.stderr and "'build' or 'admin'" in out.stderr


def test_listen_rule_and_token_file_parsing(tmp_path: Path) -> None:
    for listen in ("127.0.0.1:7878", "127.0.0.1:0", "127.8.9.10:7878", "[::1]:7878", "unix:/run/cached.sock"):
        assert is_loopback(listen), listen
        check_listen(listen, Tokens())
    # Host names are refused without tokens, localhost included: what they resolve to is not ours to decide.
    for listen in ("0.0.0.0:7878", "[::]:7878", ":7878", "10.1.2.3:7878", "cached.internal:7878", "localhost:7878",
                   "localhost", "ip6-localhost:7878", "[localhost]:7878", "[::1:7878"):
        assert not is_loopback(listen), listen
        with pytest.raises(ValueError, match="without tokens") as refused:
            check_listen(listen, Tokens())
        assert "host names are refused" in str(refused.value)
        check_listen(listen, Tokens(build=(("t1", BUILD_TOKEN),)))
    tokens = load_token_file(write_token_file(tmp_path / "tokens"))
    assert tokens == Tokens(build=(("t1", BUILD_TOKEN), ("t2", BUILD_TOKEN), ("t3", OTHER_TOKEN), ("*", BACKEND_TOKEN)), admin=(ADMIN_TOKEN,))
    for text, message in [
        ("build:t1:short\n", "at least 16"), ("admin:short\n", "at least 16"), ("just-a-token-0123456789\n", "expected"),
        ("# nothing\n", "no token"), ("root:t1:admin-token-fedcba9876543210\n", "'build' or 'admin'"),
        ("build:Bad Tenant:build-token-0123456789abcdef\n", "not a tenant id"), ("build::build-token-0123456789abcdef\n", "not a tenant id"),
    ]:
        (tmp_path / "bad").write_text(text)
        with pytest.raises(ValueError, match=message):
            load_token_file(tmp_path / "bad")


def test_the_old_two_field_build_line_is_refused_at_startup_naming_the_new_forms(tmp_path: Path) -> None:
    old = tmp_path / "tokens"
    old.write_text(f"admin:{ADMIN_TOKEN}\nbuild:{BUILD_TOKEN}\n")
    with pytest.raises(ValueError, match="tokens:2") as e:
        load_token_file(old)
    assert "build:TENANT:TOKEN" in str(e.value) and "build:*:TOKEN" in str(e.value)
    out = subprocess.run(
        [sys.executable, "-m", "cached", "serve", "--root", str(tmp_path / "root"), "--listen", "127.0.0.1:0", "--token-file", str(old)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2 and f"{old}:2" in out.stderr and "build:TENANT:TOKEN" in out.stderr
    assert not (tmp_path / "root").exists()


def test_token_checker_roles_and_tenants() -> None:
    checker = TokenChecker(Tokens(
        build=(("t1", BUILD_TOKEN), ("t2", BUILD_TOKEN), ("t1", "second-build-token-000000"), ("*", BACKEND_TOKEN)),
        admin=(ADMIN_TOKEN,),
    ))
    assert checker.role_of(f"Bearer {BUILD_TOKEN}") == "build"
    assert checker.role_of("bearer second-build-token-000000") == "build"
    assert checker.role_of(f"Bearer {ADMIN_TOKEN}".encode()) == "admin"
    assert checker.caller_of(f"Bearer {BUILD_TOKEN}") == Caller("build", frozenset({"t1", "t2"}))
    assert checker.caller_of("Bearer second-build-token-000000") == Caller("build", frozenset({"t1"}))
    assert checker.caller_of(f"Bearer {BACKEND_TOKEN}") == Caller("build", None)
    assert checker.caller_of(f"Bearer {ADMIN_TOKEN}") == Caller("admin", None)
    one = checker.caller_of("Bearer second-build-token-000000")
    assert one is not None and one.may_act_for("t1") and not one.may_act_for("t2") and not one.may_act_for("*")
    for header in (None, "", BUILD_TOKEN, f"Basic {BUILD_TOKEN}", "Bearer ", f"Bearer {BUILD_TOKEN}x", f"Bearer {BUILD_TOKEN[:-1]}"):
        assert checker.role_of(header) is None, header


def _denied(call) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises((grpc.RpcError, PermissionDenied)) as e:
        call()
    error = e.value
    code = error.code if isinstance(error, PermissionDenied) else error.code()
    details = error.details if isinstance(error, PermissionDenied) else error.details()
    assert code == grpc.StatusCode.PERMISSION_DENIED, (code, details)
    return error


def test_a_build_token_acts_only_for_its_tenants(secured) -> None:  # type: ignore[no-untyped-def]
    files = tiny_app(WRITE_DIST, extra={"src/tenants.txt": b"tenants"})
    with Client(secured.address, token=OTHER_TOKEN) as other:
        t3_result = other.build(files=files, app="mine", tenant="t3")
        (t3_blob,) = other.upload_missing("t3", [b"t3's secret blob" * 10])
    with Client(secured.address, token=ADMIN_TOKEN) as admin:
        stats_before = admin.stats_response()

    with Client(secured.address, token=BUILD_TOKEN) as client:
        # Its own tenants: builds and blobs work.
        for tenant in ("t1", "t2"):
            assert client.build(files=files, app="mine", tenant=tenant).outputs
            assert client.upload_missing(tenant, [f"{tenant} blob".encode() * 10])
            assert client.find_missing(tenant, [digest_of(b"nothing like it")])
        # Another tenant's: builds, every blob call and deploys are PERMISSION_DENIED.
        error = _denied(lambda: client.build(files=files, app="mine", tenant="t3"))
        assert "t3" in error.details
        _denied(lambda: client.find_missing("t3", [t3_blob]))
        _denied(lambda: client.upload_missing("t3", [b"planted into t3" * 10]))
        _denied(lambda: client.read_blob("t3", t3_blob))
        _denied(lambda: client.read_blob("t3", t3_result.outputs[0].digest_ref))
        _denied(lambda: client.build(files=files, app="mine", tenant=""))
        _denied(lambda: client.build(files=files, app="mine", tenant="*"))
        _denied(client.stats)
    metadata = [("authorization", f"Bearer {BUILD_TOKEN}")]
    with grpc.insecure_channel(secured.address) as channel:
        deployer = deploy_pb2_grpc.DeployerStub(channel)
        _denied(lambda: deployer.Deploy(deploy_pb2.DeployRequest(tenant="t3", app="mine"), metadata=metadata))
        _denied(lambda: deployer.Rollback(deploy_pb2.RollbackRequest(tenant="t3", app="mine"), metadata=metadata))
        # Its own tenant passes authorisation and reaches the deployer (which has no build of this app).
        with pytest.raises(grpc.RpcError) as own:
            deployer.Deploy(deploy_pb2.DeployRequest(tenant="t1", app="never-built"), metadata=metadata)
        assert own.value.code() == grpc.StatusCode.NOT_FOUND
        # A raw stream call for another tenant stores nothing.
        chunks = iter([cached_pb2.UploadChunk(tenant="t3", digest=digest_of(b"z" * 50), data=b"z" * 50)])
        _denied(lambda: cached_pb2_grpc.ContentStoreStub(channel).UploadBlobs(chunks, metadata=metadata))
    with Client(secured.address, token=ADMIN_TOKEN) as admin:
        assert admin.stats_response().actions == stats_before.actions + 2  # t1's and t2's builds; none for t3
        planted = digest_of(b"planted into t3" * 10)
        assert [d.hash for d in admin.find_missing("t3", [planted])] == [planted.hash]

    with Client(secured.address, token=BACKEND_TOKEN) as backend:  # build:*: every tenant, but not Admin
        assert backend.build(files=files, app="mine", tenant="t3").hit
        assert backend.read_blob("t3", t3_blob) == b"t3's secret blob" * 10
        assert backend.build(files=files, app="backend", tenant="t9").outputs
        with pytest.raises(NotFound):
            backend.read_blob("t9", t3_blob)  # tenant scoping of blobs still holds
        _denied(backend.stats)
    with Client(secured.address, token=ADMIN_TOKEN) as admin:  # admin: everything
        assert admin.build(files=files, app="mine", tenant="t3").hit
        assert admin.read_blob("t3", t3_blob)
        assert admin.find_missing("t1", [t3_blob]) == [t3_blob]  # admin or not, answers stay scoped to the tenant named
        assert admin.explain("t3", "mine")
        assert admin.stats().builds >= 1
