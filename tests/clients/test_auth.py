"""Bearer tokens: the interceptor, the token file and the rule that a daemon beyond loopback needs tokens."""

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

from cached.server.auth import TokenChecker, Tokens, check_listen, is_loopback, load_token_file
from cached.v1 import cached_pb2, cached_pb2_grpc, tree_pb2
from cached_client import AsyncClient, Client, PermissionDenied, Unauthenticated, digest_of
from support import WRITE_DIST, DaemonProcess, tiny_app

BUILD_TOKEN = "build-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-fedcba9876543210"


def write_token_file(path: Path) -> Path:
    path.write_text(f"# tokens of the test daemon\nbuild:{BUILD_TOKEN}\n\nadmin:{ADMIN_TOKEN}\n")
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


def test_a_daemon_without_tokens_refuses_to_listen_beyond_loopback(tmp_path: Path) -> None:
    # Refused before anything binds: no traffic leaves loopback.
    out = subprocess.run(
        [sys.executable, "-m", "cached", "serve", "--root", str(tmp_path / "root"), "--listen", "0.0.0.0:0"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2
    assert "refusing to listen on 0.0.0.0:0 without tokens" in out.stderr and "--token-file" in out.stderr
    assert not (tmp_path / "root").exists()


def test_a_bad_token_file_is_refused_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "tokens"
    bad.write_text(f"build:{BUILD_TOKEN}\nroot:{ADMIN_TOKEN}\n")
    out = subprocess.run(
        [sys.executable, "-m", "cached", "serve", "--root", str(tmp_path / "root"), "--listen", "127.0.0.1:0", "--token-file", str(bad)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2 and f"{bad}:2" in out.stderr and "'build' or 'admin'" in out.stderr


def test_listen_rule_and_token_file_parsing(tmp_path: Path) -> None:
    for listen in ("127.0.0.1:7878", "127.0.0.1:0", "[::1]:7878", "localhost:7878", "unix:/run/cached.sock"):
        assert is_loopback(listen), listen
        check_listen(listen, Tokens())
    for listen in ("0.0.0.0:7878", "[::]:7878", ":7878", "10.1.2.3:7878", "cached.internal:7878"):
        assert not is_loopback(listen), listen
        with pytest.raises(ValueError, match="without tokens"):
            check_listen(listen, Tokens())
        check_listen(listen, Tokens(build=(BUILD_TOKEN,)))
    tokens = load_token_file(write_token_file(tmp_path / "tokens"))
    assert tokens == Tokens(build=(BUILD_TOKEN,), admin=(ADMIN_TOKEN,))
    for text, message in [("build:short\n", "at least 16"), ("just-a-token-0123456789\n", "expected"), ("# nothing\n", "no token")]:
        (tmp_path / "bad").write_text(text)
        with pytest.raises(ValueError, match=message):
            load_token_file(tmp_path / "bad")


def test_token_checker_roles() -> None:
    checker = TokenChecker(Tokens(build=(BUILD_TOKEN, "second-build-token-000000"), admin=(ADMIN_TOKEN,)))
    assert checker.role_of(f"Bearer {BUILD_TOKEN}") == "build"
    assert checker.role_of("bearer second-build-token-000000") == "build"
    assert checker.role_of(f"Bearer {ADMIN_TOKEN}".encode()) == "admin"
    for header in (None, "", BUILD_TOKEN, f"Basic {BUILD_TOKEN}", "Bearer ", f"Bearer {BUILD_TOKEN}x", f"Bearer {BUILD_TOKEN[:-1]}"):
        assert checker.role_of(header) is None, header
